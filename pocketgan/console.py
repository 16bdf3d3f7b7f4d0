"""The application's terminal output: one rich console for tables, stderr for errors, the progress renderer."""

from __future__ import annotations

from pathlib import Path

from pocketgan.runtime.console import RichProgress, console, err_console, make_console

__all__ = ["RichProgress", "console", "err_console", "format_count", "make_console", "print_trained"]


def format_count(n: float, unit: str = "") -> str:
    """``49681530880`` → ``49.68 G``; keeps three significant decimals for small values."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def print_trained(model_dir: Path) -> None:
    """One summary line about a trained model directory (rank 0 only under torchrun): steps, time, losses."""
    from pocketgan.core.contract import ModelManifest
    from pocketgan.distill.distributed import is_main_process

    if not is_main_process():
        return
    prov = ModelManifest.load(model_dir).provenance
    losses = ", ".join(f"{k} {v:.4g}" for k, v in (prov.get("final_losses") or {}).items())
    took = f" in {prov['wall_time_s']:.0f} s" if prov.get("wall_time_s") is not None else ""
    tail = f": {losses}" if losses else ""
    console.print(f"saved {model_dir} ({prov.get('method')}, {prov.get('steps')} steps{took}){tail}", markup=False)
