"""Seed spread: the same notebook settings trained with several seeds, and how far apart
the final scores land.

    .venv/bin/python benchmarks/seeds.py                          # the default run, seeds 0 1 2
    .venv/bin/python benchmarks/seeds.py -f params/kaggle.yaml --set data_dir=... --seeds 0 1 2

One score is one draw: a different seed gives other initial weights and another order
of batches. This prints every seed's accuracy and macro-F1 from its run's
``metrics.json``, then their mean, standard deviation and range (max - min), with the
``make run`` command of each run.
"""

import argparse

from accuracy import parse_settings
from notebook_runs import benchmark_out_dir, run

from utils import paths
from utils.published import spread


def main() -> None:
    """Run the notebook once per seed and print the table and the spread."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", dest="files", action="append", default=[], help="params file")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    out_dir = benchmark_out_dir("seeds")
    print(f"Runs in {paths.display(out_dir)}\n")
    print("| seed | accuracy | macro-F1 | training time | command |")
    print("|---:|---:|---:|---:|---|")
    done = []
    for seed in args.seeds:
        result = run(args.files, settings | {"seed": seed}, f"seed{seed}", out_dir)
        done.append(result)
        print(
            f"| {seed} | {result.metrics['accuracy']:.1%} | {result.metrics['macro_f1']:.3f} "
            f"| {result.training_seconds:.0f} s | `{result.command}` |",
            flush=True,
        )
    f1 = [r.metrics["macro_f1"] for r in done]
    print(f"\nmacro-F1 over {len(done)} seeds: {spread(f1)}; range {max(f1) - min(f1):.3f}")
    print(f"accuracy over {len(done)} seeds: {spread([r.metrics['accuracy'] for r in done])}")


if __name__ == "__main__":
    main()
