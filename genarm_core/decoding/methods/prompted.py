"""The prompted baseline: the base alone, reading first the ``prompted:`` system prompts of the
objectives with a non-zero weight (the cheapest test-time alignment there is)."""

from __future__ import annotations

from typing import Any

from .core import Method, Weights, weighted_names


class Prompted(Method):
    name = "prompted"
    label = "Prompted"
    summary = ("the base alone, reading first the `prompted:` system prompts of the objectives with a non-zero weight "
               "(the weights' sizes do not matter); a chat gains a system message, a text prompt gets them before a blank line")
    cost = "1"

    def canonical_weights(self, weights: Weights) -> Weights:
        return tuple((k, 1.0) for k, v in weights if v != 0)  # a weight only picks an objective's system prompt

    def setting_label(self, weights, n, options) -> str:
        return f"Prompted ({', '.join(k for k, _ in weights)})"

    def problem(self, config, weights) -> str | None:
        named = weighted_names(weights)
        prompts = {o.name: o.prompted for o in config.objectives}
        lacking = [o for o in named if not prompts.get(o)]
        if named and not lacking:
            return None
        return ("Prompted uses the system prompts ('prompted:' in the model-set file) of the objectives with a "
                "non-zero weight; " + (f"{lacking} have none" if lacking else "every weight is 0")
                + f" (this set has them for {[o for o, t in prompts.items() if t] or 'no objective'})")

    def base_prompt(self, spec, config, chat: bool) -> Any:
        """The system prompts of the weighted objectives, then the prompt (a chat gains a system message,
        or its own system message grows; a text prompt follows them after a blank line)."""
        problem = self.problem(config, spec.weights)
        if problem:  # never an empty system prompt
            raise ValueError(problem)
        by_name = {o.name: o for o in config.objectives}
        system = "\n".join(by_name[n].prompted for n in config.objective_names if spec.weights.get(n, 0.0) != 0)
        if isinstance(spec.prompt, str):
            if chat:
                return [{"role": "system", "content": system}, {"role": "user", "content": spec.prompt}]
            return f"{system}\n\n{spec.prompt}"
        messages = [dict(m) for m in spec.prompt]
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = f"{system}\n{messages[0]['content']}"
            return messages
        return [{"role": "system", "content": system}, *messages]


METHOD = Prompted()
