"""Who may do what: logins, their roles, and whose judgments each sees.

Without logins (``python app.py`` with no ``--auth``/``--auth-file``) the dashboard has no identities:
one researcher on their own machine does and sees everything, and an annotator is whatever name is
typed. With logins, each login has a role (as Argilla and Label Studio give them):

| role | may |
| --- | --- |
| ``annotator`` | vote (the Annotate queue, the judgment API), see and export their own judgments, change their own verdicts |
| ``researcher`` | also generate and vote in Compare, save presets, run and read studies |
| ``admin`` | also switch the model set for everyone, see every annotator's judgments, agreement, exports and each study's progress, and every job |

The login is the annotator: a request that names another is refused, naming the field. Roles come
from the auth file (``USER:PASS:ROLE`` lines; a line without a role is an annotator) and ``--admin
USER``; with no admin named, the first login is the admin. Every handler the server registers is
checked against its role (``app.guard``), however it is called: by the page, by its API name, or by
its bare ``fn_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError

ROLES = ("annotator", "researcher", "admin")  # each may do what the ones before it may


@dataclass(frozen=True)
class Access:
    logins: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)
    #: login -> role (``ROLES``); admins are in ``admins`` too
    roles: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_logins(cls, users: list[str] | None, admins: list[str] | None = None,
                    roles: dict[str, str] | None = None) -> "Access":
        """``users``: the login names (None: no logins); ``roles``: a role per login (default annotator).
        ``admins`` must be among the logins; when no login is an admin (by ``roles`` or ``admins``), the
        first login is.

        Raises:
            UserError: an admin that is not a login, or an unknown role, naming it.
        """
        if not users:
            if admins:
                raise UserError("--admin: admins need logins (--auth or --auth-file)")
            return cls()
        unknown = [a for a in admins or [] if a not in users]
        if unknown:
            raise UserError(f"--admin: {', '.join(map(repr, unknown))} is not a login of --auth / --auth-file")
        given = dict(roles or {})
        bad = {u: r for u, r in given.items() if r not in ROLES}
        if bad:
            raise UserError(f"--auth-file: unknown role(s) {bad}; a role is one of {', '.join(ROLES)}")
        table = {u: given.get(u, "annotator") for u in users}
        for a in admins or []:
            table[a] = "admin"
        if "admin" not in table.values():
            table[users[0]] = "admin"
        return cls(True, frozenset(u for u, r in table.items() if r == "admin"), table)

    def role(self, username: str | None) -> str:
        """A login's role; without logins everyone is the researcher who owns the machine (every power)."""
        if not self.logins:
            return "admin"
        return self.roles.get(username or "", "annotator") if username else "annotator"

    def may(self, username: str | None, role: str) -> bool:
        """Whether ``username`` has ``role`` or a higher one."""
        return ROLES.index(self.role(username)) >= ROLES.index(role)

    def require(self, username: str | None, role: str, what: str) -> None:
        """Refuse (naming the action and the role it needs) unless ``username`` has ``role``."""
        if not self.may(username, role):
            raise UserError(f"{what} needs the {role} role; {username!r} is {'an' if self.role(username)[0] in 'ae' else 'a'} "
                            f"{self.role(username)} (roles are set in the server's --auth-file)")

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
