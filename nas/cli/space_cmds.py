"""`hwnas spaces`, `hwnas sample`, `hwnas profile`."""
from __future__ import annotations

import click

from nas.cli.options import MAX_SAMPLES, SEED, echo_json, read_config
from search_spaces import get_space, list_spaces


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per space.")
def spaces(as_json: bool) -> None:
    """List the registered search spaces with their sizes (distinct configurations)."""
    for name in list_spaces():
        sp = get_space(name)
        s = sp.spec
        if as_json:
            echo_json({"name": name, "size": sp.size(), "size_float": sp.size(quantize=False),
                       "resolutions": list(s.resolutions), "description": s.description})
        else:
            click.echo(f"{name:<10} {sp.size():.3e} configs ({sp.size(quantize=False):.3e} float)  "
                       f"res {s.resolutions[0]}-{s.resolutions[-1]}  {s.description}")


@click.command()
@click.option("--space", required=True, help="Search space name (see `hwnas spaces`).")
@click.option("--n", "n", type=click.IntRange(1, MAX_SAMPLES), default=1, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--float", "float_only", is_flag=True, help="All blocks at 32 bits (no quantization).")
def sample(space: str, n: int, seed: int, float_only: bool) -> None:
    """Print N random configs as JSON lines (reproducible from the seed)."""
    import numpy as np

    sp = get_space(space)
    rng = np.random.default_rng(seed)  # the sequence of `sample_many(n, seed)`, streamed (n is up to 10^6)
    for _ in range(n):
        click.echo(sp.sample(rng, quantize=not float_only).to_json())


@click.command()
@click.option("--space", required=True, help="Search space name.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config JSON file (hwnas or OFA).")
@click.option("--ofa", help='Once-for-All config JSON: {"ks": [...], "e": [...], "d": [...], "r": 224}.')
@click.option("--json", "as_json", is_flag=True, help="Print {macs, params, size_bytes} as JSON.")
def profile(space: str, config_file: str | None, ofa: str | None, as_json: bool) -> None:
    """Exact MACs, parameters and size in bytes (weights at their bits) of one subnet."""
    sp = get_space(space)
    cfg = read_config(space, config_file, ofa)
    p = sp.profile(cfg)
    if as_json:
        echo_json(p.to_dict())
    else:
        click.echo(f"macs {p.macs:,}  params {p.params:,}  size {p.size_bytes:,} bytes")
