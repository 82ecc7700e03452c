"""Who may see a run and who may act on it (cancel, delete, steer): one rule, asked by every page, the sidebar, the
live stream and the Gradio twin.

Modes: `local` (one person on their own machine: everything allowed, nothing asked), `hosted` (each visitor
their own runs), `class` (own runs; a teacher everything: the rule takes a `teacher` visitor already). A
visitor is known by a secret key (>= 128 random bits, kept in an HttpOnly cookie, never in a link); a run's
status.json keeps only a hash of its owner's key, compared in constant time. A run is shown to others through
a read-only share token (an HMAC of the run id): it lets one see that run, nothing else, and act on nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("local", "hosted", "class")
SECRET_FILE = ".share-secret"  # in the runs folder: share links survive a restart
VISITOR_COOKIE = "cnn_visitor"  # HttpOnly, set by the server (ui/stream.py) on a hosted server
KEY_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def new_key() -> str:
    """A visitor's secret key: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def is_key(value: object) -> bool:
    """Whether `value` can be a visitor's key: URL-safe text of 32 to 256 characters (new_key's are 43), too long to
    guess; a shorter one is refused rather than trusted."""
    return isinstance(value, str) and 32 <= len(value) <= 256 and KEY_CHARS.fullmatch(value) is not None


def owner_tag(key: str) -> str:
    """What a run keeps of its owner: a hash of the key (the key itself never goes to disk)."""
    return hashlib.sha256(f"cnn-studio-visitor:{key}".encode()).hexdigest()


@dataclass(frozen=True)
class Visitor:
    key: str | None = None  # None: the local user (or a visitor with no key: owns nothing)
    teacher: bool = False
    share: str | None = None  # a read-only share token from the link, if any

    @property
    def tag(self) -> str | None:
        return owner_tag(self.key) if self.key else None


@dataclass(frozen=True)
class Access:
    mode: str = "local"
    secret: bytes = b""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"access mode must be one of {MODES}, not {self.mode!r}.")

    @property
    def private(self) -> bool:
        return self.mode != "local"

    def owns(self, visitor: Visitor, status: Mapping[str, Any]) -> bool:
        tag, owner = visitor.tag, status.get("owner")
        return bool(tag and isinstance(owner, str) and hmac.compare_digest(owner, tag))

    def lists(self, visitor: Visitor, status: Mapping[str, Any]) -> bool:
        """Whether the run appears in this visitor's lists (Runs page, sidebar, model pickers)."""
        return not self.private or visitor.teacher or self.owns(visitor, status)

    def can_read(self, visitor: Visitor, run_id: str, status: Mapping[str, Any]) -> bool:
        """See the run (its page, curves, stream): listed, or opened with the run's share token; in a class,
        every run (the class board shows them all; only its owner and the teacher act on one)."""
        return (self.mode == "class" or self.lists(visitor, status)
                or (visitor.share is not None and self.shared(run_id, visitor.share)))

    def can_act(self, visitor: Visitor, status: Mapping[str, Any]) -> bool:
        """Cancel or delete the run, download or load its checkpoint, set its lr and momentum while it trains:
        never through a share link."""
        return self.lists(visitor, status)

    def can_pause(self, visitor: Visitor, status: Mapping[str, Any]) -> bool:
        """Pause the run, step it by hand, resume it: a paused run keeps its training slot while others may wait
        for one, so locally its owner (everyone), in a class the teacher only, on a hosted server nobody."""
        return self.can_act(visitor, status) and (self.mode == "local" or (self.mode == "class" and visitor.teacher))

    def share_token(self, run_id: str) -> str:
        return hmac.new(self.secret, run_id.encode(), hashlib.sha256).hexdigest()[:32]

    def shared(self, run_id: str, token: str) -> bool:
        return hmac.compare_digest(self.share_token(run_id), token)


def share_secret(runs_root: Path) -> bytes:
    """$CNN_SHARE_SECRET, else a random secret made once and kept in the runs folder (mode 0600)."""
    if os.environ.get("CNN_SHARE_SECRET"):
        return os.environ["CNN_SHARE_SECRET"].encode()
    return kept_secret(Path(runs_root) / SECRET_FILE, lambda: secrets.token_hex(32)).encode()


def kept_secret(path: Path, make) -> str:
    """The secret in `path`, made once by `make()` and written there readable by this user only (0600); the
    first of several processes to make it wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(make())
        except FileExistsError:  # another process made it meanwhile
            pass
    return path.read_text().strip()


def server_access(runs_root: Path) -> Access:
    """This server's rule: a class while one is in progress (cnn_core.classroom), hosted (CNN_HOSTED=1 with
    private runs, the default there), else local."""
    from cnn_core.classroom import ClassStore
    from cnn_core.hosted import HostedLimits

    limits = HostedLimits.from_env()
    mode = "hosted" if limits.enabled and limits.private_runs else "local"
    if ClassStore(runs_root).path.exists():
        mode = "class"
    return Access(mode, share_secret(runs_root) if mode != "local" else b"")
