"""docker-compose.yml has no public secrets: each one must come from the environment or
.env, and Compose refuses to start without it."""

from __future__ import annotations

import re
from pathlib import Path

from notify_app.settings import KNOWN

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
SECRETS = (
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
    "NOTIFY_API_KEYS",
    "NOTIFY_JWT_SECRET",
    "NOTIFY_SIGNING_SECRET",
    "NOTIFY_WEBHOOK_SECRET",
)
_SUBSTITUTION_RE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<rest>[^}]*)\}")


def test_every_secret_is_required_and_has_no_default() -> None:
    uses = {(m["name"], m["rest"]) for m in _SUBSTITUTION_RE.finditer(COMPOSE)}
    for name in SECRETS:
        assert (name, f":?set {name} in .env") in uses, f"{name} is not required"
    defaults = sorted(name for name, rest in uses if name in SECRETS and ":-" in rest)
    assert not defaults, f"secrets with a default: {defaults}"


def test_no_password_is_written_in_the_file() -> None:
    for line in COMPOSE.splitlines():
        value = line.split("#", 1)[0]
        if re.search(r"(PASSWORD|_PASS|SECRET|API_KEYS):\s*\S", value):
            assert "${" in value, f"a literal secret: {line.strip()}"
        for userinfo in re.findall(r"://[^/@\s:]+:([^@\s]+)@", value):
            assert userinfo.startswith("${"), f"a literal password in a URL: {line.strip()}"


def test_the_env_example_names_every_secret_and_only_known_settings() -> None:
    names = set(re.findall(r"^([A-Z0-9_]+)=", EXAMPLE, re.MULTILINE))
    assert set(SECRETS) <= names
    in_compose = set(re.findall(r"\b(NOTIFY_[A-Z0-9_]+)", COMPOSE))
    assert {n for n in names | in_compose if n.startswith("NOTIFY_")} <= KNOWN
