"""The command grammar of the payload steps, as JUNO's offline tutorial scripts take it (docs/payloads.md).

    detsim  [COMMON OPTIONS] GENERATOR [GENERATOR OPTIONS]     (tut_detsim.py)
    elecsim [OPTIONS]                                          (tut_det2elec.py)
    cal     [OPTIONS]                                          (calibration)
    rec     [OPTIONS]                                          (tut_calib2rec.py)

`check(step, argv)` parses a step's arguments (no file is opened, nothing runs) into a `Parsed` and raises a
`GrammarError` naming the step and the option for anything it cannot take: an unknown option or generator, a
missing value, a number that is not one, a value outside its range or its list (an unknown nuclide, a position
outside the detector). The payloads run what `check` returns, so `jsub create`, `jsub submit` and
`juno-prod submit` refuse a command line exactly when the payload would.

Options are `--name VALUE` or `--name=VALUE`; options with several values (`--particles e+ e-`) take every
following word that is not an option; a flag takes none. An option given twice is refused (the offline scripts
keep the last one silently; here a command line that repeats one was almost always assembled by mistake).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.nuclides import NUCLIDES

Kind = Literal["int", "float", "str", "flag"]
STEPS = ("detsim", "elecsim", "cal", "rec")
MAX_EVENTS = 10_000_000
MAX_MOMENTUM_MEV = 1e7
PARTICLES = ("e-", "e+", "gamma", "mu-", "mu+", "neutron", "proton", "alpha")
HEPEVT_EXES = ("IBD", "IBD-eplus", "IBD-neutron", "Muon")
NUMBER = re.compile(r"^-\.?\d")


class GrammarError(PayloadInputError):
    """A command line a step cannot take: `step` and `option` say where (option "" for the line as a whole)."""

    def __init__(self, step: str, option: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.option = option


@dataclass(frozen=True)
class Opt:
    """One option: its name, the kind and number of its values, its default and what values it accepts."""

    name: str
    kind: Kind = "str"
    many: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    noun: str = "value"  # what a choice is called in errors ("nuclide", "particle")
    low: float | None = None
    high: float | None = None
    aliases: tuple[str, ...] = ()
    help: str = ""

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")


Validator = Callable[[str, dict[str, Any], frozenset[str]], None]


@dataclass(frozen=True)
class Command:
    """A step or a generator: its options, and a check across them (`validate(where, values, given)`)."""

    name: str
    options: tuple[Opt, ...]
    validate: Validator | None = None
    help: str = ""

    def find(self, token: str) -> Opt | None:
        return next((o for o in self.options if token == o.name or token in o.aliases), None)


@dataclass(frozen=True)
class Parsed:
    """A checked command line: every option with its value (defaults filled in) and, for detsim, the generator."""

    step: str
    options: Mapping[str, Any]
    given: frozenset[str] = frozenset()
    generator: str | None = None
    generator_options: Mapping[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()

    def __getitem__(self, dest: str) -> Any:
        return self.options[dest]

    def gen(self, dest: str) -> Any:
        return self.generator_options[dest]

    def meta(self) -> dict[str, Any]:
        """What the output files record: the options the step ran with."""
        out: dict[str, Any] = {"options": dict(self.options), "argv": list(self.argv)}
        if self.generator is not None:
            out["generator"] = {"name": self.generator, **self.generator_options}
        return out


def _fail(step: str, option: str, message: str) -> GrammarError:
    return GrammarError(step, option, message)


def _is_value(token: str) -> bool:
    return not token.startswith("-") or bool(NUMBER.match(token))


def _convert(step: str, where: str, opt: Opt, text: str) -> Any:
    label = f"{where}{opt.name} {text!r}"
    if opt.kind == "int":
        try:
            value: Any = int(text)
        except ValueError:
            raise _fail(step, opt.name, f"{label}: not an integer") from None
    elif opt.kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise _fail(step, opt.name, f"{label}: not a number") from None
        if not math.isfinite(value):
            raise _fail(step, opt.name, f"{label}: not a finite number")
    else:
        value = text
        if not text:
            raise _fail(step, opt.name, f"{where}{opt.name}: an empty value")
        if opt.choices and text not in opt.choices:
            raise _fail(step, opt.name, f"{label}: unknown {opt.noun} (one of {', '.join(opt.choices)})")
    if (opt.low is not None and value < opt.low) or (opt.high is not None and value > opt.high):
        shown = [_number(b, opt.kind) for b in (opt.low, opt.high)]
        bounds = (f"{shown[0]} to {shown[1]}" if opt.low is not None and opt.high is not None
                  else f"at least {shown[0]}" if opt.low is not None else f"at most {shown[1]}")
        raise _fail(step, opt.name, f"{label}: expected {bounds}")
    return value


def _number(bound: float | None, kind: Kind) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if kind == "int" else f"{bound:g}"


def _options(step: str, cmd: Command, argv: Sequence[str], start: int, *, stop_at_word: bool,
             parent: Command | None = None) -> tuple[dict[str, Any], frozenset[str], int]:
    """Parse `cmd`'s options from argv[start:]; stop at the first word that is not an option's (stop_at_word)."""
    where = f"{cmd.name} " if parent is not None else ""
    values: dict[str, Any] = {}
    i = start
    while i < len(argv):
        token = argv[i]
        if _is_value(token):
            if stop_at_word:
                break
            raise _fail(step, token, f"{where}{token!r}: unexpected word (not an option's value)")
        name, has_inline, inline = token.partition("=")
        opt = cmd.find(name)
        if opt is None:
            if parent is not None and parent.find(name) is not None:
                raise _fail(step, name, f"{name}: an option of {step}, not of the generator {cmd.name}: give it "
                                        f"before `{cmd.name}`")
            known = ", ".join(o.name for o in cmd.options)
            raise _fail(step, name, f"{where}{name}: no such option (the options of {cmd.name}: {known})")
        if opt.dest in values:
            raise _fail(step, opt.name, f"{where}{opt.name}: given twice")
        i += 1
        if opt.kind == "flag":
            if has_inline:
                raise _fail(step, opt.name, f"{where}{opt.name}: a flag takes no value")
            values[opt.dest] = True
            continue
        words = [inline] if has_inline else []
        while not has_inline and i < len(argv) and _is_value(argv[i]) and (opt.many or not words):
            words.append(argv[i])
            i += 1
        if not words:
            raise _fail(step, opt.name, f"{where}{opt.name}: needs {'values' if opt.many else 'a value'}")
        converted = [_convert(step, where, opt, w) for w in words]
        values[opt.dest] = converted if opt.many else converted[0]
    given = frozenset(values)
    for opt in cmd.options:
        if opt.dest not in values:
            values[opt.dest] = list(opt.default) if isinstance(opt.default, tuple) else opt.default
    if cmd.validate is not None:
        cmd.validate(step, values, given)
    return values, given, i


# --- the checks across options -------------------------------------------------------------------------------


def _root_name(step: str, values: dict[str, Any], *names: str) -> None:
    for name in names:
        value = values.get(name)
        if value is not None and not str(value).endswith(".root"):
            raise _fail(step, f"--{name.replace('_', '-')}", f"--{name.replace('_', '-')} {value!r}: "
                                                            "a ROOT file's name ends with .root")


def _volume(step: str, where: str, values: dict[str, Any], given: frozenset[str]) -> None:
    volume, material = values.get("volume"), values.get("material")
    if volume is None:
        if "material" in given:
            raise _fail(step, "--material", f"{where}--material: give the --volume it fills")
        return
    holds = det.VOLUMES[volume][0]
    if material is None:
        values["material"] = holds
    elif material != holds:
        raise _fail(step, "--material", f"{where}--material {material}: volume {volume} holds {holds}")


def _inside(step: str, option: str, point: Sequence[float]) -> None:
    radius = math.sqrt(sum(c * c for c in point))
    if radius > det.LS_RADIUS_MM:
        shown = " ".join(f"{c:g}" for c in point)
        raise _fail(step, option, f"gun {option} {shown}: outside the central detector's scintillator "
                                  f"(radius {det.LS_RADIUS_MM:.0f} mm)")


def _check_gun(step: str, values: dict[str, Any], given: frozenset[str]) -> None:
    particles = values["particles"]
    for dest, label in (("momentums", "--momentums"), ("positions", "--positions")):
        per = 3 if dest == "positions" else 1
        n = len(values[dest]) // per if values[dest] is not None else 1
        if values[dest] is not None and len(values[dest]) % per:
            raise _fail(step, label, f"gun {label}: x y z in mm, a multiple of three numbers "
                                     f"(got {len(values[dest])})")
        if n not in (1, len(particles)):
            raise _fail(step, label, f"gun {label}: one for all particles or one per particle "
                                     f"({len(particles)}), got {n}")
    if "positions" in given and "volume" in given:
        raise _fail(step, "--volume", "gun --volume: the vertices are either --positions or uniform in a --volume")
    if values["positions"] is not None:
        points = values["positions"]
        for k in range(0, len(points), 3):
            _inside(step, "--positions", points[k:k + 3])
    mode, extra = values["momentums_mode"], values["momentums_extra_params"]
    if mode != "Fix" and (extra is None or len(extra) != 1):
        raise _fail(step, "--momentums-extra-params", f"gun --momentums-mode {mode}: needs "
                    "--momentums-extra-params with one value (Range: the upper end, Gaus: the sigma)")
    if mode == "Fix" and extra is not None:
        raise _fail(step, "--momentums-extra-params", "gun --momentums-extra-params: only with --momentums-mode "
                                                      "Range or Gaus")
    if mode == "Range" and extra[0] < max(values["momentums"]):
        raise _fail(step, "--momentums-extra-params", "gun --momentums-extra-params: the upper end of the range "
                                                      "is below --momentums")
    _volume(step, "gun ", values, given)


def _check_gendecay(step: str, values: dict[str, Any], given: frozenset[str]) -> None:
    _volume(step, "gendecay ", values, given)


def _check_hepevt(step: str, values: dict[str, Any], given: frozenset[str]) -> None:
    if values["exe"] is None:
        raise _fail(step, "--exe", f"hepevt --exe: required (one of {', '.join(HEPEVT_EXES)})")
    if values["exe"] == "Muon":
        if given & {"volume", "material"}:
            raise _fail(step, "--volume", "hepevt --exe Muon: muons come from the rock above through the detector; "
                                          "--volume and --material do not apply")
        values["volume"] = values["material"] = None
        return
    _volume(step, "hepevt ", values, given)


def _check_detsim(step: str, values: dict[str, Any], given: frozenset[str]) -> None:
    _root_name(step, values, "output", "user_output")


def _check_io(step: str, values: dict[str, Any], given: frozenset[str]) -> None:
    if values["evtmax"] == 0:
        raise _fail(step, "--evtmax", "--evtmax 0: -1 (every event) or a positive number")
    _root_name(step, values, "input", "output", "user_output")
    if values["input"] == values["output"]:
        raise _fail(step, "--output", f"--output {values['output']}: is the --input too; give another name")


# --- the grammar -----------------------------------------------------------------------------------------------

VOLUME_NAMES = tuple(det.VOLUMES)
MATERIALS = tuple(sorted({m for m, _, _ in det.VOLUMES.values()}))


def _volume_opts(default: str | None) -> tuple[Opt, Opt]:
    return (Opt("--volume", choices=VOLUME_NAMES, noun="volume", default=default,
                help="the volume whose material the vertices are uniform in"),
            Opt("--material", choices=MATERIALS, noun="material", help="the volume's material (a check)"))


def _evtmax(default: int, low: int) -> Opt:
    return Opt("--evtmax", "int", default=default, low=low, high=MAX_EVENTS,
               help="events to simulate" if low > 0 else "events to process (-1: all)")


def _io(step: str, before: str) -> tuple[Opt, ...]:
    return (Opt("--input", default=f"sample_{before}.root", help="the previous step's ROOT file"),
            Opt("--output", default=f"sample_{step}.root", help="the ROOT file to write"))


GUN = Command("gun", (
    Opt("--particles", many=True, choices=PARTICLES, noun="particle", default=("gamma",),
        help="one or more particles, shot together in each event"),
    Opt("--momentums", "float", many=True, default=(1.0,), low=1e-6, high=MAX_MOMENTUM_MEV,
        help="MeV/c (see --momentums-interp): one for all particles or one per particle"),
    Opt("--momentums-mode", choices=("Fix", "Range", "Gaus"), noun="mode", default="Fix",
        help="Fix, Range (uniform up to the extra parameter) or Gaus (the extra parameter is the sigma)"),
    Opt("--momentums-extra-params", "float", many=True, low=0.0, high=MAX_MOMENTUM_MEV),
    Opt("--momentums-interp", choices=("Momentum", "KineticEnergy", "TotalEnergy"), noun="interpretation",
        default="Momentum", help="what --momentums are"),
    Opt("--positions", "float", many=True, aliases=("--position",),
        help="x y z in mm (default the centre): one for all particles or one per particle"),
    *_volume_opts(None),
), _check_gun, "particles of fixed (or spread) momenta from fixed points or uniform in a volume")

GENDECAY = Command("gendecay", (
    Opt("--nuclear", choices=tuple(NUCLIDES), noun="nuclide", default="U-238",
        help="the nuclide (with its chain in equilibrium)"),
    *_volume_opts("pTarget"),
), _check_gendecay, "radioactive decays uniform in a volume")

HEPEVT = Command("hepevt", (
    Opt("--exe", choices=HEPEVT_EXES, noun="generator program", help="the HepEvt generator to run"),
    *_volume_opts("pTarget"),
), _check_hepevt, "events of a generator program: IBD (e+ and neutron), IBD-eplus, IBD-neutron, Muon")

GENERATORS: dict[str, Command] = {c.name: c for c in (GUN, GENDECAY, HEPEVT)}

COMMANDS: dict[str, Command] = {
    "detsim": Command("detsim", (
        _evtmax(10, 1),
        Opt("--seed", "int", default=42, low=0),
        Opt("--start-evtid", "int", default=0, low=0, high=2**62, help="the first event's id"),
        Opt("--output", default="sample_detsim.root", help="the ROOT file to write (tree sim)"),
        Opt("--user-output", help="also write the primaries' truth here (tree evt)"),
        Opt("--no-gdml", "flag", default=False, help="do not store the geometry in the output"),
        Opt("--detoption", choices=tuple(det.VESSELS), noun="detector option", default="Acrylic",
            help="the vessel of the scintillator"),
        Opt("--muon-mb-per-event", "float", default=500.0, low=0.0, high=65536.0,
            help="memory a muon event holds while it is simulated (MB; this project's)"),
    ), _check_detsim, "simulate events of a generator: particles -> photoelectron hits"),
    "elecsim": Command("elecsim", (
        _evtmax(-1, -1), *_io("elecsim", "detsim"),
        Opt("--seed", "int", default=42, low=0),
        Opt("--rate", "float", default=1.0, low=1e-6, high=1e8, help="the events' rate in Hz (their times)"),
        Opt("--user-output", help="also write each readout's summary here (tree elecsum)"),
    ), _check_io, "electronics: hits -> per-PMT charges and times"),
    "cal": Command("cal", (
        _evtmax(-1, -1), *_io("calib", "elecsim"),
        Opt("--tag", help="the locked global tag (default $JUNO_GLOBAL_TAG)"),
        Opt("--run", "int", default=1, low=0, high=999_999, help="the run whose conditions apply"),
    ), _check_io, "calibrate charges and times with the run's conditions"),
    "rec": Command("rec", (
        _evtmax(-1, -1), *_io("rec", "calib"),
    ), _check_io, "reconstruct each event's energy and vertex"),
}


def check(step: str, argv: Sequence[str]) -> Parsed:
    """Parse `juno-payload <step> <argv>` without running anything; GrammarError names the step and the option."""
    cmd = COMMANDS.get(step)
    if cmd is None:
        raise GrammarError(step, "", f"no such step {step!r} (steps: {', '.join(STEPS)})")
    argv = tuple(argv)
    values, given, i = _options(step, cmd, argv, 0, stop_at_word=step == "detsim")
    if step != "detsim":
        return Parsed(step, values, given, argv=argv)
    if i == len(argv):
        raise GrammarError(step, "", f"a generator is needed after the options: {', '.join(GENERATORS)} "
                                     "(e.g. `gun --particles e+ --momentums 1`)")
    name = argv[i]
    generator = GENERATORS.get(name)
    if generator is None:
        raise GrammarError(step, name, f"{name!r}: no such generator (generators: {', '.join(GENERATORS)})")
    gen_values, _, _ = _options(step, generator, argv, i + 1, stop_at_word=False, parent=cmd)
    return Parsed(step, values, given, name, gen_values, argv)


def usage(step: str) -> str:
    """The options of a step (and of detsim's generators), for --help and the docs."""
    cmd = COMMANDS[step]
    lines = [f"juno-payload {step} [OPTIONS]" + (" GENERATOR [GENERATOR OPTIONS]" if step == "detsim" else ""),
             "", cmd.help, ""]
    groups = [("options", cmd)] + [(f"generator {g.name}: {g.help}", g) for g in GENERATORS.values()
                                   if step == "detsim"]
    for title, command in groups:
        lines.append(f"{title}:")
        for opt in command.options:
            shape = "" if opt.kind == "flag" else (" V..." if opt.many else " V")
            extra = f" ({'|'.join(opt.choices)})" if opt.choices and len(opt.choices) < 8 else ""
            default = "" if opt.default in (None, False) else f" [default {_show(opt.default)}]"
            lines.append(f"  {opt.name}{shape}  {opt.help}{extra}{default}")
        lines.append("")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
