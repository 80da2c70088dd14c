"""`python -m augmentation IN OUT N [options]`: augmented copies of a folder of recordings."""

import argparse
import sys

from augmentation.command import augment_folder
from augmentation.pipeline import PARAMETERS
from xval.errors import XvalError


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m augmentation",
        description="For every audio file under IN (relative folders kept), write a "
                    "peak-normalised copy NAME_original.wav and N augmented versions "
                    "NAME_augKK.wav into OUT. Defaults come from config.ini [augmentation].")
    parser.add_argument("input", metavar="IN")
    parser.add_argument("output", metavar="OUT")
    parser.add_argument("n", metavar="N", type=int, help="augmented versions per file")
    parser.add_argument("--seed", type=int, help="base seed (same seed, same files)")
    parser.add_argument("--noise-dir", help="folder of background noises (else coloured noise)")
    parser.add_argument("--ir-dir", help="folder of impulse responses (else a simulated room)")
    parser.add_argument("--workers", type=int, help="processes (0: all cores)")
    parser.add_argument("--config", help="config.ini")
    parser.add_argument("--no-progress", action="store_true")
    for key in PARAMETERS:
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=float)
    args = parser.parse_args(argv)
    try:
        from xval.config import find_config, load_config

        config = load_config(args.config or find_config())
        params = dict(config.augmentation)
        params.update({k: getattr(args, k) for k in PARAMETERS if getattr(args, k) is not None})
        seed = params["seed"] if args.seed is None else args.seed
        workers = params["workers"] if args.workers is None else args.workers
        summary = augment_folder(args.input, args.output, args.n, params=params, seed=seed,
                                 noise_dir=args.noise_dir, ir_dir=args.ir_dir, workers=workers,
                                 progress=not args.no_progress)
    except XvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {summary['written']} files ({summary['seconds']:.1f}s of audio) from "
          f"{summary['files']} recordings into {args.output}.")
    if summary["skipped"]:
        print(f"Skipped {len(summary['skipped'])} unreadable file(s):")
        for s in summary["skipped"]:
            print(f"  {s['path']}: {s['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
