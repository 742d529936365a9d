"""The DWS tool's command-line form, rewritten into drsync's commands before typer parses it.

The DWS tool is driven as `<tool> -t backup --config-file F --disaster-fine-grained ...`; cron
lines and scripts written for it run unchanged with `drsync` as the program name. `main()` in
cli/main.py calls `translate` on argv: a line in that form (its first word an option, `-t`/`--type`
among them) becomes the drsync command line it means; any other line is returned unchanged.
docs/dws-migration.md lists each form and what it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from drsync.errors import DwsUsageError


@dataclass(frozen=True)
class DwsCommand:
    drsync: tuple[str, ...]  # the drsync command (and fixed options) it becomes
    options: dict[str, str]  # DWS option with a value -> drsync option ("" = checked, dropped)
    flags: dict[str, str]  # DWS flag -> drsync flag ("" = accepted, nothing to pass)


_COMMON_FLAGS = {"--disaster-fine-grained": ""}  # drsync only does fine-grained DR
COMMANDS: dict[str, DwsCommand] = {
    "backup": DwsCommand(("backup",), {"--publication-list": "--publication-list"}, _COMMON_FLAGS),
    "restore": DwsCommand(("restore",), {}, _COMMON_FLAGS),
    "show-progress": DwsCommand(("show-progress", "--format", "dws"), {}, _COMMON_FLAGS),
    "stop-backup": DwsCommand(("stop-backup",), {}, _COMMON_FLAGS),
    "stop-restore": DwsCommand(("stop-restore",), {}, _COMMON_FLAGS),
    # The DWS tool does not ask for confirmation; a script running it has no terminal.
    "set-independent": DwsCommand(("set-independent", "--yes"), {}, _COMMON_FLAGS),
    # drsync has no data nodes (one process per host): the counts are checked, then unused.
    "prepare": DwsCommand(("prepare",), {"--local-dn-num": "", "--remote-dn-num": ""}, _COMMON_FLAGS),
    "cancel-publication": DwsCommand(
        ("cancel-publication",), {"--disaster-object-list-file": "--object-list"},
        {**_COMMON_FLAGS, "--all-cancel": "--all-cancel"}),
}
TYPE_OPTIONS = ("-t", "--type")


def is_dws_form(argv: list[str]) -> bool:
    """`drsync -t backup ...` (drsync's own commands come first, so never start with `-t`)."""
    return bool(argv) and argv[0].startswith("-") and any(
        a in TYPE_OPTIONS or a.startswith("--type=") for a in argv)


def _split_equals(argv: list[str]) -> list[str]:
    out: list[str] = []
    for a in argv:
        if a.startswith("--") and "=" in a:
            out.extend(a.split("=", 1))
        else:
            out.append(a)
    return out


def translate(argv: list[str]) -> list[str]:
    """drsync's argv for a DWS-form `argv`; any other argv unchanged."""
    if not is_dws_form(argv):
        return argv
    words = _split_equals(argv)
    kind: str | None = None
    config: str | None = None
    given: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        takes_value = word in (*TYPE_OPTIONS, "--config-file", "-c") or (
            word.startswith("--") and any(word in c.options for c in COMMANDS.values()))
        value = words[i + 1] if takes_value and i + 1 < len(words) else None
        if takes_value and value is None:
            raise DwsUsageError(f"option {word} needs a value", hint="see docs/dws-migration.md")
        if word in TYPE_OPTIONS:
            kind = value
        elif word in ("--config-file", "-c"):
            config = value
        else:
            given.append((word, value))
        i += 2 if takes_value else 1
    if kind not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise DwsUsageError(
            f"-t {kind}: not a DWS command drsync runs (it runs -t {known})" if kind
            else "-t needs a command", hint="drsync's own commands: `drsync --help`; the DWS "
            "forms and what each runs: docs/dws-migration.md")
    if config is None:
        raise DwsUsageError(f"-t {kind} needs --config-file backupRestore.ini",
                            hint=f"drsync -t {kind} --config-file /path/backupRestore.ini ...")
    command = COMMANDS[kind]
    result = [*command.drsync, "-c", config]
    for word, value in given:
        if value is not None and word in command.options:
            if command.options[word]:
                result += [command.options[word], value]
            else:
                _check_count(word, value)
        elif value is None and word in command.flags:
            if command.flags[word]:
                result.append(command.flags[word])
        else:
            allowed = ", ".join([*command.options, *command.flags]) or "none"
            raise DwsUsageError(f"-t {kind}: unknown option {word} (allowed: --config-file, {allowed})",
                                hint="see docs/dws-migration.md")
    if kind == "cancel-publication" and ("--object-list" in result) == ("--all-cancel" in result):
        raise DwsUsageError("-t cancel-publication needs exactly one of --disaster-object-list-file F "
                            "or --all-cancel")
    return result


def _check_count(option: str, value: str) -> None:
    if not value.isdigit() or int(value) < 1:
        raise DwsUsageError(f"{option} {value}: must be a whole number >= 1",
                            hint="drsync has no data nodes; the counts are only checked")
