"""`python -m augmentation IN OUT N [options]`: augmented copies of a folder of recordings.

Exit status: 0 when the copies are written (unreadable files are skipped and listed), 2 for a
bad argument or configuration, or when the `[augment]` extra is missing (one `error:` line on
stderr, nothing written).
"""

import argparse
from collections.abc import Sequence

import xval.config.schema as schema
from augmentation.command import augment_folder
from augmentation.pipeline import require_augment_extra
from xval.config.loader import find_config, load_config
from xval.config.sections import AugmentationSettings
from xval.core.arguments import ArgumentParser
from xval.core.entry import exit_process, run_entry
from xval.core.errors import ConfigurationError
from xval.core.logs import quiet_framework_logs
from xval.core.optional import EXTRAS
from xval.core.version import add_version


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m augmentation`."""
    parser = ArgumentParser(
        prog="python -m augmentation",
        description="For every audio file under IN (relative folders kept), write a "
                    "peak-normalised copy NAME_original.wav and N augmented versions "
                    "NAME_augKK.wav into OUT. Defaults come from config.ini [augmentation]. "
                    f"Needs the [augment] extra: {EXTRAS['augment'].install}.")
    add_version(parser)
    parser.add_argument("input", metavar="IN")
    parser.add_argument("output", metavar="OUT")
    parser.add_argument("n", metavar="N", type=schema.augmented_versions("N"),
                        help="augmented versions per file")
    parser.add_argument("--noise-dir", help="folder of background noises (else coloured noise)")
    parser.add_argument("--ir-dir", help="folder of impulse responses (else a simulated room)")
    parser.add_argument("--config", help="config.ini")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace output files that exist in OUT (else an error, nothing "
                             "written)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar; print only the summary line and errors")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="TensorFlow's and absl's log lines too")
    group = parser.add_argument_group("augmentation parameters (default: config.ini "
                                      "[augmentation])")
    schema.add_arguments(group, "augmentation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (no traceback reaches the user:
    `xval.core.entry`)."""
    return run_entry(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    quiet_framework_logs(verbose=args.verbose)
    if args.quiet and args.verbose:
        raise ConfigurationError("Give -q/--quiet or -v/--verbose, not both.")
    require_augment_extra("python -m augmentation")
    config = load_config(args.config or find_config())
    given = {k: getattr(args, k) for k in schema.SCHEMA["augmentation"]
             if getattr(args, k) is not None}
    try:  # the merged values, e.g. --min-rate above config.ini's max_rate
        params = schema.check_section("augmentation", {**config.augmentation, **given},
                                      style="flag")
    except ConfigurationError as e:
        raise ConfigurationError(f"{e} (other values from {config.path})") from None
    settings = AugmentationSettings.of(params)
    summary = augment_folder(args.input, args.output, args.n, params=params,
                             seed=settings.seed, noise_dir=args.noise_dir,
                             ir_dir=args.ir_dir, workers=settings.workers,
                             progress=not (args.no_progress or args.quiet),
                             overwrite=args.overwrite)
    print(f"Wrote {summary['written']} files ({summary['seconds']:.1f}s of audio) from "
          f"{summary['files']} recordings into {args.output}."
          + (f" Resumed: {summary['resumed']} recordings were done by an earlier run of "
             "this command." if summary.get("resumed") else ""))
    if summary["skipped"] and not args.quiet:
        print(f"Skipped {len(summary['skipped'])} unusable file(s):")
        for s in summary["skipped"]:
            print(f"  {s['path']}: {s['reason']}")
    return 0


if __name__ == "__main__":
    exit_process(main())
