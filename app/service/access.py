"""Who sees whose judgments.

Without logins (``python app.py`` with no ``--auth``) the dashboard has no identities: one
researcher on their own machine sees everything, and an annotator is whatever name is typed.
With logins, the login is the annotator: each annotator's queue, judgments and statistics are
their own, and only the admins (``--admin USER``; the first login when none is named) see every
annotator's judgments, the agreement between them, the exports of all of them and the progress
of every study (judged / needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError


@dataclass(frozen=True)
class Access:
    logins: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_logins(cls, users: list[str] | None, admins: list[str] | None = None) -> "Access":
        """``users``: the login names (None: no logins). ``admins`` must be among them; none named
        makes the first login the admin.

        Raises:
            UserError: an admin that is not a login, naming it.
        """
        if not users:
            if admins:
                raise UserError("--admin: admins need logins (--auth or --auth-file)")
            return cls()
        unknown = [a for a in admins or [] if a not in users]
        if unknown:
            raise UserError(f"--admin: {', '.join(map(repr, unknown))} is not a login of --auth / --auth-file")
        return cls(True, frozenset(admins or users[:1]))

    def sees_all(self, username: str | None) -> bool:
        return not self.logins or username in self.admins

    def own(self, username: str | None) -> str | None:
        """The only annotator whose judgments ``username`` may see; None: every annotator's."""
        return None if self.sees_all(username) else (username or "")

    def annotator(self, username: str | None, given: str | None, field_name: str = "annotator") -> str:
        """The annotator a request acts as: with logins, the login itself (a different name is refused,
        naming the field); without, the name given."""
        given = (given or "").strip()
        if not self.logins or not username:
            return given
        if given and given != username:
            raise UserError(f"{field_name}: you are logged in as {username!r} and can act only as yourself, not {given!r}")
        return username
