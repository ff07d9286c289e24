"""The one vocabulary of verdicts on two completions (people's, pairwise judges', ground truth's):
A better, B better, tie, both bad. A leaf: the database (``storage``) and the dashboard import it too."""

VERDICTS = ("A", "B", "tie", "both_bad")
