"""One module per command: its options, `session.load(...)`, one compute call, one renderer.

cli.py registers them (`COMMANDS`, in the order `gradcli --help` lists them). A module holds
`NAME`, `EXAMPLES` (the help's epilog), `FORMULA` (whether its first argument is a formula that
may start with '-') and `command`, the Typer callback; heavy imports stay inside `command`.
"""

from . import check, descend, diff, graph, schema
from . import eval as eval_

COMMANDS = (eval_, diff, graph, descend, check, schema)
