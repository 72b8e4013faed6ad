"""`gradcli schema`: the published JSON Schemas of the --json outputs."""

from typing import Annotated, Optional

import typer

from ..errors import InputError

NAME = "schema"
FORMULA = False
EXAMPLES = """Examples:

\b
  gradcli schema                 (the schemas there are, one a line)
  gradcli schema eval            (the schema of eval --json)
  gradcli schema batch           (one JSON Lines row of eval --points FILE --json)
"""


def schema_files() -> dict[str, object]:
    """The schemas shipped in the package, by name (eval, check, descend, batch, ...)."""
    from importlib import resources

    folder = resources.files("gradcli").joinpath("schemas")
    suffix = ".schema.json"
    return {p.name[: -len(suffix)]: p for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(suffix)}


def command(
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME",
        help="Which output: eval, check, descend or batch (a JSON Lines row of --points). "
             "Without NAME: the list.")] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) that a command's --json output follows."""
    from ..render.console import write

    schemas = schema_files()
    if name is None:
        import json

        for key, path in schemas.items():
            title = json.loads(path.read_text(encoding="utf-8")).get("title", "")
            write(f"{key:<10} {title}\n")
        return
    path = schemas.get(name.strip().lower())
    if path is None:
        from ..words import short

        raise InputError(f"no schema named {short(name)!r}; there are: {', '.join(schemas)}")
    write(path.read_text(encoding="utf-8"))
