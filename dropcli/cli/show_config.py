"""dropcli config: the resolved config, validated, without training (Hydra's --cfg job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dropcli.cli.common import SetOption, config_file, console, refuse_extra_arguments, with_bad_input_handled
from dropcli.config import dump_yaml, load_config


def config(
    ctx: typer.Context,
    config_path: Annotated[Path, typer.Argument(dir_okay=False, metavar="CONFIG", callback=config_file,
                                                help="YAML config (it may `extends:` another).")],
    overrides: SetOption = None,
) -> None:
    """Print the resolved config a run would use, validated; train nothing.

    Merge order: schema defaults, then the YAML file and the files it `extends:` (bases first), then each
    --set in order. Exit code 2 with one line per problem when it is not valid. The YAML printed is what a
    run saves as its config.yaml."""
    refuse_extra_arguments(ctx, "config")
    resolved = with_bad_input_handled(lambda: load_config(config_path, overrides or []))
    console.print(dump_yaml(resolved), highlight=False, markup=False, end="")
