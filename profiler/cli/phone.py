"""CLI pieces for the phone target: ``bench``/``run`` options, ``devices``, ``clean``.

Only argparse wiring and printing live here; the work is in :mod:`profiler.phone.target`,
:mod:`profiler.phone.adb`. Heavy imports stay inside functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from profiler.cli.output import csv_list

DEFAULT_PERF_PROFILE = "sustained_high_performance"   # = profiler.phone.target.DEFAULT_PERF_PROFILE
DEFAULT_PROFILING_LEVEL = "detailed"
DEFAULT_RUNS = 10
# = profiler.phone.snpe.commands.PERF_PROFILES (not imported: building the parser must stay light)
PERF_PROFILES = ("low_balanced", "balanced", "default", "high_performance", "sustained_high_performance",
                 "burst", "low_power_saver", "power_saver", "high_power_saver", "system_settings")
_STATE_HINTS = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging' prompt",
    "offline": "replug the cable or toggle USB debugging",
    "absent": "it disconnected while being queried; replug it",
}


def adb_port(text: str) -> int:
    """argparse type of ``--adb-port``: a TCP port 1..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def check_adb_env() -> None:
    """``$ANDROID_ADB_SERVER_PORT`` must be a port (adbutils fails on import otherwise)."""
    import os
    from profiler.errors import ProfilerError
    text = os.environ.get("ANDROID_ADB_SERVER_PORT")
    if text is not None and not (text.isdigit() and 1 <= int(text) <= 65535):
        raise ProfilerError(f"ANDROID_ADB_SERVER_PORT={text!r}: not a port number (1-65535); "
                            "fix or unset it, or pass --adb-port")


def _add_adb_options(g) -> None:
    g.add_argument("--adb-host", default=None, metavar="HOST",
                   help="adb server host (default $ANDROID_ADB_SERVER_HOST, else 127.0.0.1)")
    g.add_argument("--adb-port", type=adb_port, default=None, metavar="PORT",
                   help="adb server port (default $ANDROID_ADB_SERVER_PORT, else 5037); the profiler never "
                        "starts a server itself")
    g.add_argument("--adb-server", action="append", default=None, metavar="HOST:PORT",
                   help="an adb server whose phones to use; repeat it for phones on several hosts (e.g. "
                        "SSH tunnels, docs/phones.md). Precedence: --adb-server, else "
                        "$PROFILER_ADB_SERVERS (HOST:PORT,HOST:PORT), else --adb-host/--adb-port. With "
                        "several servers a phone is named SERIAL@HOST:PORT")


def adb_servers(args: argparse.Namespace):
    """The adb servers of a command ([(host, port)]); prints the non-loopback warning (one line)."""
    import os
    check_adb_env()   # before adbutils is imported: it reads the variable on import
    from profiler.errors import ProfilerError
    from profiler.phone.adb.session import remote_servers_warning, resolve_servers
    given = getattr(args, "adb_server", None) or ()
    if given and (args.adb_host is not None or args.adb_port is not None):
        raise ProfilerError("--adb-server and --adb-host/--adb-port both given: use --adb-server HOST:PORT "
                            "for every server")
    servers = resolve_servers(given, args.adb_host, args.adb_port)
    env_host = os.environ.get("ANDROID_ADB_SERVER_HOST")
    warning = remote_servers_warning([(h if h is not None else env_host, p) for h, p in servers])
    if warning:
        print(warning, file=sys.stderr)
    return servers


def _open_clients(args: argparse.Namespace):
    """``{"host:port": client}`` for every server of the command (each must answer)."""
    servers = adb_servers(args)
    from profiler.phone.adb import open_client, server_name
    out = {}
    for host, port in servers:
        client = open_client(host, port)
        out[server_name(client)] = client
    return out


def add_phone_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench``/``run`` that only matter with ``--target phone``."""
    g = parser.add_argument_group("phone target (--target phone; runtimes CPU, GPU, GPU_FP16, DSP, AIP, "
                                  "optionally with _ub_float/_ub_tf8, e.g. DSP_ub_tf8)")
    g.add_argument("--devices", default="", metavar="SERIAL,...",
                   help="comma-separated phone serials (default: every phone adb lists as ready; they must be "
                        "the same model and SoC)")
    g.add_argument("--snpe-root", default=None, metavar="DIR", help="SNPE/QAIRT SDK root (default $SNPE_ROOT)")
    _add_adb_options(g)
    g.add_argument("--runs", type=int, default=DEFAULT_RUNS, metavar="N",
                   help=f"snpe-net-run runs per module; one sample per run (default {DEFAULT_RUNS})")
    g.add_argument("--input-count", type=int, default=10, metavar="N",
                   help="random inputs per run; diagview averages over them (default 10)")
    g.add_argument("--perf-profile", default=DEFAULT_PERF_PROFILE, choices=PERF_PROFILES, metavar="PROFILE",
                   help=f"snpe-net-run --perf_profile: {', '.join(PERF_PROFILES)} (default {DEFAULT_PERF_PROFILE}: "
                        "clocks the phone can hold over a long session; burst is faster but throttles)")
    g.add_argument("--profiling-level", default=DEFAULT_PROFILING_LEVEL,
                   choices=["basic", "moderate", "detailed", "linting"],
                   help="snpe-net-run --profiling_level (default detailed: needed for per-layer times)")
    g.add_argument("--buffer", default="float", choices=["float", "ub_float", "ub_tf8"],
                   help="input/output buffers for runtimes named without a suffix (default float)")
    g.add_argument("--cooldown-temp", type=float, default=None, metavar="CELSIUS",
                   help="before each module, wait until the battery is at or below this temperature")
    g.add_argument("--cooldown-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="longest wait for --cooldown-temp; then measure anyway and record it (default 300)")
    g.add_argument("--dsp-clock", default=None, metavar="FREQ",
                   help="DSP/HTP clock (e.g. 800MHz) to turn per-layer cycles into µs (rough); without it "
                        "DSP Layers Time is left out and the cycles are kept in the records")
    g.add_argument("--device-root", default="/data/local/tmp/profiler", metavar="PATH",
                   help="folder on the phone for the SDK and models (default /data/local/tmp/profiler)")
    q = parser.add_argument_group("quantization (DSP/AIP runtimes)")
    q.add_argument("--act-bitwidth", type=int, default=8, choices=[8, 16], help="activations (default 8)")
    q.add_argument("--weight-bitwidth", type=int, default=8, choices=[8, 16], help="weights (default 8)")
    q.add_argument("--bias-bitwidth", type=int, default=32, choices=[8, 32], help="biases (default 32)")
    q.add_argument("--use-enhanced-quantizer", action="store_true", help="the quantizer's enhanced mode")
    q.add_argument("--use-adjusted-weights-quantizer", action="store_true",
                   help="adjusted min/max for 8-bit weights")
    q.add_argument("--cle", action="store_true", help="cross-layer equalization (--optimizations cle)")
    q.add_argument("--htp-socs", default="", metavar="SOC,...",
                   help="SNPE 2: also run snpe-dlc-graph-prepare for these SoCs (e.g. sm8550) so the HTP graph "
                        "is prepared offline")
    q.add_argument("--quantization-overrides", default=None, metavar="FILE",
                   help="AIMET-format encodings JSON given to the converter; the quantizer then uses "
                        "--override_params")
    q.add_argument("--calibration-images", default=None, metavar="DIR",
                   help="images for calibrating 3-channel image inputs (default: random uniform raws)")
    q.add_argument("--calibration-count", type=int, default=10, metavar="N", help="calibration samples (default 10)")


def phone_config(args: argparse.Namespace):
    """A :class:`profiler.phone.target.PhoneConfig` from parsed ``bench``/``run`` arguments."""
    from profiler.errors import ProfilerError
    from profiler.phone.target import PhoneConfig
    from profiler.phone.snpe import QuantizeOptions, parse_clock

    clock = None
    if args.dsp_clock:
        try:
            clock = parse_clock(args.dsp_clock)
        except ValueError as e:
            raise ProfilerError(f"--dsp-clock: {e}") from None
    quant = QuantizeOptions(act_bitwidth=args.act_bitwidth, weights_bitwidth=args.weight_bitwidth,
                            bias_bitwidth=args.bias_bitwidth, use_enhanced_quantizer=args.use_enhanced_quantizer,
                            use_adjusted_weights_quantizer=args.use_adjusted_weights_quantizer, cle=args.cle,
                            htp_socs=tuple(s.lower() for s in csv_list(args.htp_socs)))
    return PhoneConfig(
        snpe_root=args.snpe_root, adb_host=args.adb_host, adb_port=args.adb_port,
        adb_servers=tuple(getattr(args, "adb_server", None) or ()),
        devices=tuple(csv_list(args.devices)) or None, runs=args.runs, perf_profile=args.perf_profile,
        profiling_level=args.profiling_level, buffer=args.buffer, input_count=args.input_count,
        cooldown_temp_c=args.cooldown_temp, cooldown_timeout_s=args.cooldown_timeout, dsp_clock_hz=clock,
        quantize=quant, quantization_overrides=args.quantization_overrides,
        calibration_images=args.calibration_images, calibration_count=args.calibration_count,
        device_root=args.device_root, tool_timeout_s=max(float(args.timeout), 60.0))


def phone_target(args: argparse.Namespace):
    """``--target phone``: a :class:`profiler.phone.target.PhoneTarget` (checks the SDK and options now)."""
    adb_servers(args)   # bad values and the non-loopback warning: before the SDK is looked at
    from profiler.cli.output import info
    from profiler.phone.target import PhoneTarget
    target = PhoneTarget(phone_config(args))
    target.on_notice = info
    return target


# --- commands -----------------------------------------------------------------------------

def cmd_devices(args: argparse.Namespace) -> int:
    """Print every phone the adb server(s) list, with the server each hangs off; exit 1 when none
    is ready."""
    clients = _open_clients(args)
    from profiler.phone.adb import list_devices
    listed = [(server, i) for server, client in clients.items() for i in list_devices(client)]
    if not listed:
        print(f"no devices (adb server {', '.join(clients)} lists none); connect a phone with USB "
              "debugging enabled (docs/phones.md)", file=sys.stderr)
        return 1
    rows = [("SERIAL", "STATE", "MODEL", "SOC", "ANDROID-SDK", "ABI", "ADB-SERVER")]
    for server, i in listed:
        rows.append((i.serial, i.state, i.model or "-", i.soc or "-", str(i.sdk) if i.sdk else "-", i.abi or "-",
                     server))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    not_ready = [(server, i) for server, i in listed if not i.ready]
    for server, i in not_ready:
        where = f" (on {server})" if len(clients) > 1 else ""
        print(f"note: {i.serial}{where} is {i.state}: {_STATE_HINTS.get(i.state, 'check adb devices -l')}",
              file=sys.stderr)
    return 0 if len(not_ready) < len(listed) else 1


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove what the profiler pushed to one phone (SDK copy, module cache under --device-root)."""
    clients = _open_clients(args)
    from profiler.errors import DeviceError
    from profiler.phone.adb import DeviceSession, describe_listing
    from profiler.phone.snpe.commands import DevicePaths
    multi = len(clients) > 1
    found, listings = [], []
    for server, client in clients.items():
        try:
            infos = client.list()
        except Exception:  # noqa: BLE001 - adbutils/socket errors: the server went away just now
            infos = None
        listings.append(f"{server}: {describe_listing(infos)}" if multi else describe_listing(infos))
        found += [(server, client, i) for i in infos or ()]
    match = [f for f in found if args.device in (f[2].serial, f"{f[2].serial}@{f[0]}")]
    if len(match) > 1:
        raise DeviceError(f"device {args.device} is listed by several adb servers ({'; '.join(listings)}); "
                          "name it SERIAL@HOST:PORT")
    if not match or match[0][2].state != "device":
        state = f"is {match[0][2].state}" if match else "not found"
        raise DeviceError(f"device {args.device} {state} ({'; '.join(listings)}); give one of the phones "
                          "listed in state 'device' (see 'profiler devices')")
    server, client, i = match[0]
    session = DeviceSession(client, i.serial, timeout=120.0, name=f"{i.serial}@{server}" if multi else i.serial)
    stopped = session.stop_leftovers()
    removed = session.clean(args.device_root, DevicePaths.FOLDERS)
    what = ", ".join(removed) if removed else f"nothing (no profiler files under {args.device_root})"
    extra = f"; stopped {len(stopped)} leftover process(es) of ours" if stopped else ""
    print(f"device {session.name}: removed {what}{extra}", file=sys.stderr)
    return 0


def add_phone_commands(sub) -> None:
    """``devices`` (``import`` is in :mod:`profiler.cli.imports`)."""
    d = sub.add_parser("devices", help="list the phones adb sees (serial, state, model, SoC, Android SDK, ABI)")
    _add_adb_options(d)
    d.set_defaults(func=cmd_devices)
    c = sub.add_parser("clean", help="remove what the profiler pushed to a phone (the SDK copy and module "
                                     "cache under --device-root); other files are left alone")
    c.add_argument("--device", required=True, metavar="SERIAL",
                   help="the phone (SERIAL, or SERIAL@HOST:PORT with several adb servers)")
    c.add_argument("--device-root", default="/data/local/tmp/profiler", metavar="PATH",
                   help="the profiler's folder on the phone, as given to bench (default /data/local/tmp/profiler)")
    _add_adb_options(c)
    c.set_defaults(func=cmd_clean)



__all__ = ["add_phone_commands", "add_phone_options", "adb_servers", "cmd_clean", "cmd_devices", "phone_config",
           "phone_target"]
