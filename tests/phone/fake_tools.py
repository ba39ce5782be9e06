"""Fake SNPE SDK tools for tests: the real command lines in, the real text formats out.

:mod:`tests.phone.fake_sdk` writes one executable per tool into a fake SDK tree. Each
executable is ``#!<python>`` + ``TOOL``/``VERSION``/``CALLS`` constants + this whole file +
``main()``; the device-side ``snpe-net-run`` is therefore a complete program that the profiler
pushes to the emulated phone, where the loopback adb server runs it with ``/bin/sh``.

What is faithful and what is private:

* flags: each tool accepts the flags the SDK documents for its version (``--k v`` and
  ``--k=v``) and rejects anything else with exit code 2, like argparse/the C++ tools;
* ``snpe-onnx-to-dlc`` really reads the ONNX model (onnx package): inputs, shapes (NHWC for
  4-D tensors, as SNPE stores them), one layer per node (BatchNormalization after a Conv is
  folded, Constant/Identity dropped), unsupported ops fail like the converter does;
* ``snpe-dlc-info`` and ``snpe-diagview`` print the real text layouts (1.x, flat 2.x up to 2.19,
  indented 2.x from 2.20; DSP layer times in cycles from 1.63 on);
* the DLC and the SNPEDiag log are private JSON encodings shared by these fakes only (the real
  ones are binary). The diag log starts with bytes that are not text, so feeding the log
  itself to the diagview *parser* fails the way the real binary log does;
* ``snpe-net-run`` checks what the real one needs: libSNPE.so in ``LD_LIBRARY_PATH``, a DSP
  skel in ``ADSP_LIBRARY_PATH`` for DSP/AIP, a quantized DLC for DSP/AIP, raw inputs of the
  right size. Its latencies are computed from the layers' MACs with a little random noise.

Faults for tests come from the ONNX model's ``metadata_props`` key ``fake_fault``:
``corrupt_diag`` (snpe-net-run writes a truncated log), ``netrun_crash`` (snpe-net-run exits
with an SNPE error), ``quantize_fail`` (the quantizer fails). Every host-tool call is appended
to ``CALLS`` (JSON lines: tool, argv, cwd, the Python that ran it) so tests can check the
flags and where the tool ran (e.g. inside the bench-runner container).

Standard library only (the converter imports onnx when it runs).
"""

import json
import os
import random
import sys
import time

TOOL = globals().get("TOOL", "")
VERSION = globals().get("VERSION", "2.10.0.4541")
CALLS = globals().get("CALLS", "")

DLC_MAGIC = "FAKE-DLC"
DIAG_MAGIC = b"SNPEDIAG\x00\x02"
DSP_CLOCK_HZ = 800e6  # cycles printed = µs * 800
UNSUPPORTED_OPS = {"Einsum", "NonZero", "Loop", "If", "Scan", "Unique", "StringNormalizer"}
SKIPPED_OPS = {"Constant", "Identity"}
RUNTIME_SPEED = {"CPU": 2000.0, "GPU": 6000.0, "GPU_FP16": 10000.0, "DSP": 25000.0, "AIP": 25000.0}
PERF_FACTOR = {"burst": 0.9, "high_performance": 0.95, "sustained_high_performance": 1.0,
               "default": 1.1, "balanced": 1.3, "low_balanced": 1.5, "power_saver": 2.0,
               "low_power_saver": 2.2, "high_power_saver": 1.8, "system_settings": 1.2}


def vtuple(text=None):
    parts = (text or VERSION).split(".")
    return tuple(int(p) for p in parts[:3])


# ----------------------------------------------------------------------------- flag parsing

class Usage(Exception):
    pass


def parse_flags(argv, values, switches, multi=(), pairs=(), aliases=None):
    """``--k v`` / ``--k=v`` / switches. Unknown flags raise Usage (exit 2 like the tools)."""
    aliases = aliases or {}
    out = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            raise Usage("unexpected argument %r" % arg)
        key, eq, inline = arg.partition("=")
        key = aliases.get(key, key)
        if key in switches and not eq:
            out[key] = True
        elif key in pairs:
            if eq or i + 1 >= len(argv):
                raise Usage("%s expects two values" % key)
            out.setdefault(key, []).append((argv[i], argv[i + 1]))
            i += 2
        elif key in values or key in multi:
            if eq:
                val = inline
            else:
                if i >= len(argv):
                    raise Usage("%s expects a value" % key)
                val = argv[i]
                i += 1
            if key in multi:
                out.setdefault(key, []).append(val)
            else:
                out[key] = val
        else:
            raise Usage("unrecognized argument %r" % arg)
    return out


def log_call(argv):
    if not CALLS:
        return
    line = (json.dumps({"tool": TOOL, "argv": argv, "cwd": os.getcwd(), "python": sys.executable})
            + "\n").encode()
    fd = os.open(CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def fail(msg, code=1):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    return code


# ----------------------------------------------------------------------------- DLC files

def read_dlc(path):
    try:
        with open(path, encoding="utf-8") as f:
            head = f.readline().strip()
            if head != DLC_MAGIC:
                raise ValueError("bad magic")
            return json.loads(f.read())
    except (OSError, ValueError) as e:
        raise RuntimeError("Failed to open DLC %s: %s" % (path, e))


def write_dlc(path, dlc):
    with open(path, "w", encoding="utf-8") as f:
        f.write(DLC_MAGIC + "\n" + json.dumps(dlc, indent=1))


def nhwc(dims):
    dims = [int(d) for d in dims]
    if len(dims) == 4:
        return [dims[0], dims[2], dims[3], dims[1]]
    return dims


def layer_type(op, node_attrs, in_channels):
    v1 = vtuple() < (2, 0, 0)
    if op == "Conv":
        group = node_attrs.get("group", 1)
        if group > 1 and group == in_channels:
            return "depthwise_convolutional" if v1 else "DepthWiseConv2d"
        return "convolutional" if v1 else "Conv2d"
    table = {
        "Relu": ("neuron", "ElementWiseNeuron"), "Clip": ("neuron", "ElementWiseNeuron"),
        "Sigmoid": ("neuron", "ElementWiseNeuron"), "HardSigmoid": ("neuron", "ElementWiseNeuron"),
        "HardSwish": ("neuron", "ElementWiseNeuron"), "Tanh": ("neuron", "ElementWiseNeuron"),
        "Add": ("elementwise_op", "Eltwise_Binary"), "Mul": ("elementwise_op", "Eltwise_Binary"),
        "Sub": ("elementwise_op", "Eltwise_Binary"), "Div": ("elementwise_op", "Eltwise_Binary"),
        "GlobalAveragePool": ("pooling", "PoolAvg2d"), "AveragePool": ("pooling", "PoolAvg2d"),
        "MaxPool": ("pooling", "PoolMax2d"), "Gemm": ("fully_connected", "FullyConnected"),
        "MatMul": ("fully_connected", "FullyConnected"), "Flatten": ("reshape", "Reshape"),
        "Reshape": ("reshape", "Reshape"), "Squeeze": ("reshape", "Reshape"),
        "Unsqueeze": ("reshape", "Reshape"), "Softmax": ("softmax", "Softmax"),
        "Concat": ("concatenation", "Concat"), "BatchNormalization": ("batchnorm", "Batchnorm"),
        "Transpose": ("permute", "Transpose"), "Pad": ("pad", "Pad"),
    }
    t1, t2 = table.get(op, (op.lower(), op))
    return t1 if v1 else t2


def convert(onnx_path, dlc_path, input_dims, overrides, argv, fold_bn=True):
    import onnx
    from onnx import shape_inference

    try:
        model = onnx.load(onnx_path)
    except Exception as e:  # noqa: BLE001 - the converter prints a traceback tail
        return fail("Traceback (most recent call last):\n  ...\n"
                    "google.protobuf.message.DecodeError: Error parsing message (%s)\n"
                    "ERROR - Conversion FAILED: cannot load ONNX model %s" % (type(e).__name__, onnx_path))
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        pass
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    shapes = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims):
            shapes[vi.name] = dims
    meta = {p.key: p.value for p in model.metadata_props}
    inputs = []
    given = dict(input_dims or [])
    for vi in graph.input:
        if vi.name in inits:
            continue
        if vi.name in given:
            dims = [int(x) for x in given.pop(vi.name).split(",")]
        elif vi.name in shapes:
            dims = nhwc(shapes[vi.name])
        else:
            return fail("ERROR - Conversion FAILED: input %r has no static shape; pass --input_dim" % vi.name)
        inputs.append({"name": vi.name, "dims": dims})
    if given:
        return fail("ERROR - Conversion FAILED: --input_dim names unknown input(s) %s" % sorted(given))
    producers = {}
    layers = []
    v1 = vtuple() < (2, 0, 0)
    if v1:
        for inp in inputs:
            layers.append({"name": inp["name"], "type": "data", "inputs": [inp["name"]],
                           "outputs": [inp["name"]], "dims": inp["dims"], "macs": 0, "params": 0,
                           "parameters": ["input_preprocessing: passthrough", "input_type: default"]})
    total_params = 0
    for idx, node in enumerate(graph.node):
        op = node.op_type
        name = node.name or "%s_%d" % (op, idx)
        if op in UNSUPPORTED_OPS:
            return fail("%s - 183 - ERROR - Node %s: Op type %s is not supported\n"
                        "ERROR - Conversion FAILED: onnx op %s (node %s) is not supported by SNPE"
                        % (time.strftime("%Y-%m-%d %H:%M:%S"), name, op, op, name))
        if op in SKIPPED_OPS:
            if op == "Identity" and node.input and node.input[0] in producers:
                producers[node.output[0]] = producers[node.input[0]]
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        data_in = [i for i in node.input if i and i not in inits]
        params = sum(_numel(inits[i].dims) for i in node.input if i in inits)
        if op == "BatchNormalization" and fold_bn and data_in and data_in[0] in producers \
                and layers[producers[data_in[0]]]["op"] == "Conv":
            conv = layers[producers[data_in[0]]]
            conv["outputs"] = list(node.output[:1])
            producers[node.output[0]] = producers[data_in[0]]
            continue
        out_dims = shapes.get(node.output[0]) if node.output else None
        in_dims = shapes.get(data_in[0]) if data_in else None
        in_channels = in_dims[1] if in_dims and len(in_dims) == 4 else 0
        macs = _macs(op, attrs, in_dims, out_dims, node, inits)
        total_params += params
        layers.append({"name": name, "type": layer_type(op, attrs, in_channels), "op": op,
                       "inputs": data_in, "outputs": list(node.output[:1]),
                       "dims": nhwc(out_dims) if out_dims else [1], "macs": macs, "params": params,
                       "parameters": _param_lines(op, attrs, params, macs)})
        for o in node.output:
            producers[o] = len(layers) - 1
    outputs = [{"name": o.name, "dims": nhwc(shapes.get(o.name, [1]))} for o in graph.output]
    converter_cmd = "snpe-onnx-to-dlc " + " ".join(
        "%s=%s" % (k, v) for k, v in (("input_network", onnx_path), ("output_path", dlc_path),
                                      ("quantization_overrides", overrides or "")))
    dlc = {"sdk": VERSION, "inputs": inputs, "outputs": outputs, "layers": layers,
           "quantized": False, "converter_command": converter_cmd, "quantizer_command": None,
           "overrides": bool(overrides), "fault": meta.get("fake_fault"), "total_params": total_params,
           "htp_socs": [], "hta": False}
    write_dlc(dlc_path, dlc)
    print("INFO - INFO_CONVERSION_SUCCESS: Conversion completed successfully")
    return 0


def _numel(dims):
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _macs(op, attrs, in_dims, out_dims, node, inits):
    if not out_dims:
        return 0
    out_n = _numel(out_dims)
    if op == "Conv" and len(node.input) > 1 and node.input[1] in inits:
        w = inits[node.input[1]].dims  # [M, C/group, kh, kw]
        return out_n * _numel(w[1:])
    if op in ("Gemm", "MatMul") and in_dims:
        return out_n * int(in_dims[-1])
    if in_dims:
        return max(out_n, _numel(in_dims))
    return out_n


def _param_lines(op, attrs, params, macs):
    lines = []
    if op == "Conv":
        pads = attrs.get("pads", [0, 0, 0, 0])
        strides = attrs.get("strides", [1, 1])
        lines += ["padding x: %d" % pads[1], "padding y: %d" % pads[0],
                  "stride x: %d" % strides[1], "stride y: %d" % strides[0]]
    if params:
        lines.append("param count: %d" % params)
    if macs:
        lines.append("MACs per inference: %d" % macs)
    return lines


# ----------------------------------------------------------------------------- host tools

def tool_onnx_to_dlc(argv):
    log_call(argv)
    legacy = vtuple() < (1, 25, 0)
    try:
        if legacy:
            a = parse_flags(argv, values={"--model_path", "--dlc_path", "--encoding"}, switches={"--debug", "-h"},
                            aliases={"-m": "--model_path", "-d": "--dlc_path", "--help": "-h"})
            src, dst = a.get("--model_path"), a.get("--dlc_path")
            dims, overrides = None, None
        else:
            a = parse_flags(
                argv,
                values={"--input_network", "--output_path", "--quantization_overrides", "--batch", "--copyright_file",
                        "--model_version", "--validation_target", "--udo_config_paths", "--dry_run",
                        "--out_node", "--input_type", "--input_dtype", "--input_encoding", "--input_layout"},
                switches={"--disable_batchnorm_folding", "--keep_quant_nodes", "--keep_disconnected_nodes",
                          "--no_simplification", "--strict", "--debug", "-h"},
                pairs={"--input_dim"},
                aliases={"-i": "--input_network", "-o": "--output_path", "-d": "--input_dim", "-b": "--batch",
                         "-n": "--no_simplification", "--help": "-h"})
            src, dst = a.get("--input_network"), a.get("--output_path")
            dims, overrides = a.get("--input_dim"), a.get("--quantization_overrides")
    except Usage as e:
        return fail("usage: snpe-onnx-to-dlc [-h] ...\nsnpe-onnx-to-dlc: error: %s" % e, 2)
    if "-h" in a:
        print("usage: snpe-onnx-to-dlc [-h] --input_network INPUT_NETWORK ...")
        return 0
    if not src:
        return fail("snpe-onnx-to-dlc: error: the following arguments are required: --input_network", 2)
    dst = dst or os.path.splitext(src)[0] + ".dlc"
    if overrides:
        try:
            with open(overrides, encoding="utf-8") as f:
                doc = json.load(f)
            if "activation_encodings" not in doc or "param_encodings" not in doc:
                raise ValueError("missing activation_encodings/param_encodings")
        except (OSError, ValueError) as e:
            return fail("ERROR - Conversion FAILED: invalid quantization overrides %s: %s" % (overrides, e))
    return convert(src, dst, dims, overrides, argv, fold_bn="--disable_batchnorm_folding" not in a)


def _read_input_list(path, dlc, absolute):
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith(("#", "%"))]
    except OSError as e:
        raise RuntimeError("cannot read input list %s: %s" % (path, e.strerror))
    if not lines:
        raise RuntimeError("input list %s is empty" % path)
    sizes = {i["name"]: _numel(i["dims"]) * 4 for i in dlc["inputs"]}
    for ln in lines:
        tokens = ln.split(" ")
        if len(tokens) != len(sizes):
            raise RuntimeError("input list line %r has %d inputs, the DLC %d" % (ln, len(tokens), len(sizes)))
        for tok in tokens:
            name, sep, p = tok.partition(":=")
            p = p if sep else name
            if absolute and not os.path.isabs(p):
                raise RuntimeError("input list paths must be absolute: %r" % p)
            try:
                size = os.path.getsize(p)
            except OSError:
                raise RuntimeError("input file %s does not exist" % p)
            want = sizes[name] if sep else list(sizes.values())[0]
            if size != want:
                raise RuntimeError("input file %s has %d bytes, expected %d" % (p, size, want))
    return len(lines)


def _quantize(dlc_in, dlc_out, input_list, argv, tool, extra):
    try:
        dlc = read_dlc(dlc_in)
        if dlc.get("fault") == "quantize_fail":
            raise RuntimeError("Floating point exception in quantizer (encodings out of range)")
        _read_input_list(input_list, dlc, absolute=True)
    except RuntimeError as e:
        return fail("[ERROR] %s" % e)
    dlc["quantized"] = True
    dlc["quantizer_command"] = tool + " " + " ".join(a.lstrip("-") for a in argv)
    dlc.update(extra)
    write_dlc(dlc_out, dlc)
    print("[INFO] Writing quantized model to: %s" % dlc_out)
    print("[INFO] DebugLog shutting down.")
    return 0


QUANT_VALUES = {"--input_dlc", "--input_list", "--output_dlc", "--bias_bitwidth", "--act_bitwidth",
                "--weights_bitwidth", "--bitwidth", "--float_bitwidth", "--udo_package_path", "--log-mask",
                "--log-file", "--log-dir"}
QUANT_SWITCHES = {"--no_weight_quantization", "--use_enhanced_quantizer", "--use_adjusted_weights_quantizer",
                  "--use_symmetric_quantize_weights", "--override_params", "--use_encoding_optimizations",
                  "--axis_quant", "--overwrite_cache_records", "--use_float_io", "--verbose", "--quiet",
                  "--silent", "--debug", "--debug1", "--debug2", "--debug3", "-h"}


def _check_quant(a):
    for key, allowed in (("--bias_bitwidth", ("8", "32")), ("--act_bitwidth", ("8", "16")),
                         ("--weights_bitwidth", ("8", "16"))):
        if key in a and a[key] not in allowed:
            raise Usage("%s must be one of %s" % (key, "/".join(allowed)))
    if "--bitwidth" in a and any(k in a for k in ("--bias_bitwidth", "--act_bitwidth", "--weights_bitwidth")):
        raise Usage("--bitwidth cannot be combined with --bias/act/weights_bitwidth")
    for o in a.get("--optimizations", []):
        if o not in ("cle", "bc"):
            raise Usage("unknown optimization %r" % o)


def tool_dlc_quantize(argv):
    """SNPE 1.x snpe-dlc-quantize (a C++ tool taking ``--k v`` or ``--k=v``)."""
    log_call(argv)
    try:
        a = parse_flags(argv, values=QUANT_VALUES | {"--htp_socs"}, switches=QUANT_SWITCHES | {"--enable_hta",
                        "--enable_htp"}, multi={"--optimizations", "--hta_partitions"}, aliases={"--help": "-h"})
        _check_quant(a)
    except Usage as e:
        return fail("snpe-dlc-quantize: %s\nsee snpe-dlc-quantize --help" % e, 2)
    if not a.get("--input_dlc") or not a.get("--input_list"):
        return fail("snpe-dlc-quantize: --input_dlc and --input_list are required", 2)
    out = a.get("--output_dlc") or a["--input_dlc"][:-4] + "_quantized.dlc"
    return _quantize(a["--input_dlc"], out, a["--input_list"], argv, "snpe-dlc-quantize",
                     {"hta": "--enable_hta" in a})


def tool_dlc_quant(argv):
    """SNPE 2.x snpe-dlc-quant."""
    log_call(argv)
    try:
        a = parse_flags(argv, values=QUANT_VALUES, switches=QUANT_SWITCHES, multi={"--optimizations"},
                        aliases={"--help": "-h"})
        _check_quant(a)
    except Usage as e:
        return fail("snpe-dlc-quant: %s\nsee snpe-dlc-quant --help" % e, 2)
    if not a.get("--input_dlc") or not a.get("--input_list"):
        return fail("snpe-dlc-quant: --input_dlc and --input_list are required", 2)
    out = a.get("--output_dlc") or a["--input_dlc"][:-4] + "_quantized.dlc"
    return _quantize(a["--input_dlc"], out, a["--input_list"], argv, "snpe-dlc-quant", {})


def tool_graph_prepare(argv):
    log_call(argv)
    try:
        a = parse_flags(argv, values={"--input_dlc", "--output_dlc", "--input_list", "--htp_socs", "--htp_archs",
                                      "--vtcm_override", "--buffer_data_type", "--udo_package_path",
                                      "--set_output_tensors", "--set_output_layers"},
                        switches={"--overwrite_cache_records", "--use_float_io", "-h"}, aliases={"--help": "-h"})
        if "--htp_socs" in a and "--htp_archs" in a:
            raise Usage("--htp_socs and --htp_archs are mutually exclusive")
    except Usage as e:
        return fail("snpe-dlc-graph-prepare: %s" % e, 2)
    try:
        dlc = read_dlc(a["--input_dlc"])
    except (KeyError, RuntimeError) as e:
        return fail("[ERROR] %s" % e)
    if not dlc.get("quantized"):
        return fail("[ERROR] graph prepare needs a quantized DLC")
    dlc["htp_socs"] = (a.get("--htp_socs") or "").split(",")
    out = a.get("--output_dlc") or a["--input_dlc"][:-4] + "_cached.dlc"
    write_dlc(out, dlc)
    print("[INFO] Successfully saved the cache records to %s" % out)
    return 0


def _table(headers, rows):
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "|" + "|".join(" %s " % c.ljust(w) for c, w in zip(cells, widths)) + "|"

    head = line(headers)
    dash = "-" * len(head)
    return [dash, head, dash] + [line(r) for r in rows] + [dash]


def tool_dlc_info(argv):
    log_call(argv)
    try:
        a = parse_flags(argv, values={"--input_dlc", "--save"}, switches={"--memory", "-h"},
                        aliases={"-i": "--input_dlc", "-s": "--save", "-m": "--memory", "--help": "-h"})
    except Usage as e:
        return fail("usage: snpe-dlc-info [-h] -i INPUT_DLC [-s SAVE] [-m]\nsnpe-dlc-info: error: %s" % e, 2)
    if "--input_dlc" not in a:
        return fail("snpe-dlc-info: error: the following arguments are required: -i/--input_dlc", 2)
    try:
        dlc = read_dlc(a["--input_dlc"])
    except RuntimeError as e:
        return fail("ERROR: %s" % e)
    v2 = vtuple() >= (2, 0, 0)
    dtype = "uFxp_8" if dlc["quantized"] else "Float_32"
    rows = []
    for i, layer in enumerate(dlc["layers"]):
        if v2:
            ins = ["%s (data type: %s; tensor dimension: [%s]; tensor type: %s)" % (
                t, dtype, ",".join(map(str, _dims_of(dlc, t))), "APP_WRITE" if _is_input(dlc, t) else "NATIVE")
                for t in layer["inputs"]]
            outs = ["%s (data type: %s; tensor dimension: [%s]; tensor type: NATIVE)" % (
                t, dtype, ",".join(map(str, layer["dims"]))) for t in layer["outputs"]]
        else:
            ins, outs = list(layer["inputs"]), list(layer["outputs"])
        params = list(layer.get("parameters", [])) or [""]
        n = max(len(ins), len(outs), len(params), 1)
        for k in range(n):
            rows.append([str(i) if k == 0 else "", layer["name"] if k == 0 else "", layer["type"] if k == 0 else "",
                         ins[k] if k < len(ins) else "", outs[k] if k < len(outs) else "",
                         "x".join(map(str, layer["dims"])) if k == 0 else "", "A D G C" if k == 0 else "",
                         params[k] if k < len(params) else ""])
    out = ["DLC info for: %s" % os.path.abspath(a["--input_dlc"]), "Model Version: N/A", "Model Copyright:N/A"]
    table = _table(["Id", "Name", "Type", "Inputs", "Outputs", "Out Dims", "Runtimes", "Parameters"], rows)
    out += table[:-1]
    out.append(table[-1])
    out.append("Note: The supported runtimes column assumes a processor target of Snapdragon %s"
               % ("855" if v2 else "835 (8998)"))
    out += ["Key : A:AIP", "      D:DSP", "      G:GPU", "      C:CPU", ""]
    if v2:
        enc = "No encoding info for this tensor"
        for title, tensors in (("Input Name", dlc["inputs"]), ("Output Name", dlc["outputs"])):
            out += _table([title, "Dimensions", "Type", "Encoding Info"],
                          [[t["name"], ",".join(map(str, t["dims"])), "Float_32", enc] for t in tensors])
            out.append("")
    out.append("Total parameters: %d (%d MB assuming single precision float)"
               % (dlc.get("total_params", 0), dlc.get("total_params", 0) * 4 // (1 << 20)))
    out.append("Total MACs per inference: %dk (100%%)" % (sum(l["macs"] for l in dlc["layers"]) // 1000))
    out.append("Converter command: %s" % dlc["converter_command"])
    out.append("Quantizer command: %s" % (dlc["quantizer_command"] or "N/A"))
    out.append("DLC created with converter version: %s" % VERSION)
    kinds = sorted({l["type"] for l in dlc["layers"]})
    out.append("%s used by DLC: %s" % ("Ops" if v2 else "Layers", ", ".join(kinds if v2 else [k.upper() for k in kinds])))
    out.append("Est. Steady-State Memory Needed to Run: 0.4 MiB")
    out.append(table[0])
    if dlc.get("htp_socs"):
        out.append("Cache Info:")
        out += _table(["Cache Record Name", "SNPE Version", "Cache Version", "Identifier", "Information"],
                      [["backend.metadata0", VERSION, "3.3.0", "HTP_V73_SM8550_8MB",
                        "Record Size: 0.1 MB; Optimization Level: 2"]])
    print("\n".join(out))
    return 0


def _is_input(dlc, tensor):
    return any(i["name"] == tensor for i in dlc["inputs"])


def _dims_of(dlc, tensor):
    for i in dlc["inputs"]:
        if i["name"] == tensor:
            return i["dims"]
    for layer in dlc["layers"]:
        if tensor in layer["outputs"]:
            return layer["dims"]
    return [1]


# ----------------------------------------------------------------------------- diagview

def tool_diagview(argv):
    log_call(argv)
    try:
        a = parse_flags(argv, values={"--input_log", "--output"}, switches={"-h"}, aliases={"--help": "-h"})
    except Usage as e:
        return fail("snpe-diagview: %s\nUsage: snpe-diagview --input_log DIAG_LOG [-h] [--output CSV_FILE]" % e, 2)
    if "--input_log" not in a:
        return fail("snpe-diagview: missing --input_log\nUsage: snpe-diagview --input_log DIAG_LOG", 2)
    try:
        with open(a["--input_log"], "rb") as f:
            data = f.read()
    except OSError as e:
        return fail("ERROR: could not open %s: %s" % (a["--input_log"], e.strerror))
    if not data.startswith(DIAG_MAGIC):
        return fail("ERROR: %s is not an SNPE diagnostic log" % a["--input_log"])
    try:
        log = json.loads(data[len(DIAG_MAGIC):].decode("utf-8"))
        text = render_diag(log)
    except ValueError:
        # a log cut short: diagview prints what it could decode and stops mid-record
        text = render_diag(_placeholder_log())
        cut = text.index("Total Inference Time: ") + len("Total Inference Time: ") + 1
        text = text[:cut]
        sys.stdout.write(text)
        return 0
    sys.stdout.write(text)
    if "--output" in a:
        with open(a["--output"], "w", encoding="utf-8") as f:
            f.write("Statistic,Value\nTotal Inference Time,%d\n" % log["total_us"])
    return 0


def _placeholder_log():
    return {"sdk": VERSION, "created": time.time(), "runtime": "CPU", "total_us": 100.0, "forward_us": 90.0,
            "layers": [{"name": "x", "type": "t", "us": 50.0}] * 3, "init_us": 1000.0}


def render_diag(log):
    ver = log["sdk"]
    vt = vtuple(ver)
    rt = log["runtime"]
    accel = rt in ("DSP", "AIP")
    cycles = accel and vt >= (1, 63, 0)
    when = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(log["created"]))
    init = int(log["init_us"])
    total, fwd = int(round(log["total_us"])), int(round(log["forward_us"]))
    rpc = int(total * 0.6) if accel else 0
    snpe_acc = int(rpc * 0.95) if accel else 0
    acc = int(rpc * 0.4) if accel else 0
    layers = list(log["layers"])
    lrt = {"GPU_FP16": "GPU", "AIP": "AIP"}.get(rt, rt)

    def layer_value(us):
        if cycles:
            return "%d cycles" % int(round(us * DSP_CLOCK_HZ / 1e6))
        return "%d us" % int(round(us))

    out = []
    if vt >= (2, 10, 0):  # indented layout (the 2.x version where it appeared is a guess)
        out += ["Log File Created: %s" % when, "Time Scale: 1e-06",
                "Epoch Timestamp: %d Steady Clock Timestamp: %d" % (int(log["created"] * 1e6), 5521870034),
                "Software library version: %s" % ver, "-" * 60, "",
                "SNPE Create Statistics:", "-" * 40,
                "  Load: %d us" % (init // 20), "  Deserialize: %d us" % (init // 30),
                "  Create: %d us" % (init * 8 // 10), "",
                "  Init: %d us" % init, "  De-Init: %d us" % (init // 10), "",
                "  Create Network(s): %d us" % (init * 7 // 10)]
        for key, v in (("RPC Init Time", init // 50), ("Snpe Accelerator Init Time", init // 55),
                       ("Accelerator Init Time", init // 60)):
            out.append("  %s: %s" % (key, ("%d us" % v) if accel else "0 "))
        out += ["", "SNPE Execute Statistics (Averaged):", "-" * 40,
                "  Total Inference Time: %d us" % total, "  Forward Propagate Time: %d us" % fwd,
                "  RPC Execute Time: %s" % (("%d us" % rpc) if accel else "0 "),
                "  Snpe Accelerator Time: %s" % (("%d us" % snpe_acc) if accel else "0 "),
                "  Num times yield occurred: 0",
                "  Accelerator Time: %s" % (("%d us" % acc) if accel else "0 "), "",
                "  Per-Subnet Execution Times: ", "  " + "-" * 30,
                "    Subnet 0 (%s) : %s" % (lrt, layer_value(sum(l["us"] for l in layers))), "",
                "  Per-Layer Execution Times: ", "  " + "-" * 30]
        rows = []
        if accel:
            rows.append(("Input OpId_2 (cycles)", 0.2 * layers[0]["us"] if layers else 1.0))
            for k, l in enumerate(layers):
                rows.append(("%s:OpId_%d (cycles)" % (l["name"], 17 + 6 * k), l["us"]))
            rows.append(("Output OpId_3 (cycles)", 0.3 * layers[-1]["us"] if layers else 1.0))
        else:
            rows = [(l["name"], l["us"]) for l in layers]
        for k, (label, us) in enumerate(rows):
            out.append("    %d: %s : %s : %s" % (k, label, layer_value(us), lrt))
        out.append("")
        return "\n".join(out) + "\n"
    # flat layout (1.x and 2.x up to 2.19)
    if vt >= (2, 0, 0):
        out += ["", "Interpreting file serialized with Flatbuffer", "CREATE NETWORK: %d" % (init * 7 // 10)]
    out += ["Log File Created: %s" % when, "Time Scale: 1e-06"]
    if vt >= (2, 0, 0):
        out.append("Epoch Timestamp: %d Steady Clock Timestamp: %d" % (int(log["created"] * 1e6), 120033445566))
    out += ["Software library version: %s" % ver, "",
            "Dnn Runtime Load/Deserialize/Create/De-Init Statistics:", "-" * 50,
            "Load: %d us" % (init // 20), "Deserialize: %d us" % (init // 30), "Create: %d us" % (init * 8 // 10), "",
            "Init: %d us" % init, "De-Init: %d us" % (init // 10), "",
            "Create Network(s): %d us" % (init * 7 // 10)]
    for key, v in (("RPC Init Time", init // 50), ("Snpe Accelerator Init Time", init // 55),
                   ("Accelerator Init Time", init // 60)):
        out.append("%s: %s" % (key, ("%d us" % v) if accel else "0 NONE"))
    out += ["", "Average SNPE Statistics:", "-" * 30,
            "Total Inference Time: %d us" % total, "Forward Propagate Time: %d us" % fwd,
            "RPC Execute Time: %d us" % rpc, "Snpe Accelerator Time: %d us" % snpe_acc,
            "Accelerator Time: %d us" % acc, "Misc Accelerator Time: 0 us", "",
            "Layer Times: ", "-" * 15]
    values = [l["us"] for l in layers]
    if accel and vt >= (2, 0, 0):  # SNPE 2 DSP adds the HTP input/output ops
        values = [0.0] + values + [0.3 * values[-1] if values else 1.0]
    for k, us in enumerate(values):
        out.append("%d: %s : %s" % (k, layer_value(us), lrt))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- snpe-net-run (device)

NETRUN_VALUES = {"--container", "--input_list", "--output_dir", "--storage_dir", "--encoding_type",
                 "--perf_profile", "--profiling_level", "--gpu_mode", "--input_name", "--input_dimensions",
                 "--userbuffer_tfN", "--userbuffer_floatN", "--data_type_map", "--tensor_mode",
                 "--runtime_order", "--platform_options", "--priority_hint", "--set_output_tensors",
                 "--udo_package_path", "--duration", "--timeout", "--resizable_dim"}
NETRUN_SWITCHES = {"--use_gpu", "--use_dsp", "--use_aip", "--use_cpu", "--debug", "--userbuffer_float",
                   "--userbuffer_tf8", "--userbuffer_float_output", "--userbuffer_tf8_output",
                   "--userbuffer_auto", "--static_min_max", "--enable_cpu_fallback", "--enable_init_cache",
                   "--set_unconsumed_as_output", "--userlogs", "--version", "-h"}


def snpe_error(code, msg):
    sys.stdout.write("error_code=%d; error_message=%s; error_component=Dl System; line_no=%d; "
                     "thread_id=%d\n" % (code, msg, random.randint(100, 900), os.getpid()))
    return 1


def tool_net_run(argv):
    try:
        a = parse_flags(argv, values=NETRUN_VALUES, switches=NETRUN_SWITCHES, aliases={"--help": "-h"})
    except Usage as e:
        return fail("ERROR: %s\nUsage: snpe-net-run --container <FILE> --input_list <FILE> [options]" % e, 2)
    if "--version" in a:
        print("SNPE v%s" % VERSION)
        return 0
    pp = a.get("--perf_profile", "default" if vtuple() < (2, 0, 0) else "high_performance")
    if pp not in PERF_FACTOR:
        return fail("ERROR: invalid perf profile %r" % pp, 2)
    level = a.get("--profiling_level", "basic" if vtuple() < (2, 0, 0) else "detailed")
    if level not in ("off", "basic", "moderate", "detailed") + (("linting",) if vtuple() >= (2, 0, 0) else ()):
        return fail("ERROR: invalid profiling level %r" % level, 2)
    if "--gpu_mode" in a and a["--gpu_mode"] not in ("default", "float16"):
        return fail("ERROR: invalid gpu mode %r" % a["--gpu_mode"], 2)
    if not a.get("--container") or not a.get("--input_list"):
        return fail("ERROR: --container and --input_list are required", 2)
    lib_dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    if not any(os.path.isfile(os.path.join(d, "libSNPE.so")) for d in lib_dirs):
        sys.stderr.write('CANNOT LINK EXECUTABLE "snpe-net-run": library "libSNPE.so" not found\n')
        return 1
    if "--use_dsp" in a or "--use_aip" in a:
        runtime = "DSP" if "--use_dsp" in a else "AIP"
    elif "--use_gpu" in a:
        runtime = "GPU_FP16" if a.get("--gpu_mode") == "float16" else "GPU"
    else:
        runtime = "CPU"
    if runtime in ("DSP", "AIP"):
        adsp = [d for d in os.environ.get("ADSP_LIBRARY_PATH", "").split(";") if d]
        skel = any(n.endswith("Skel.so") for d in adsp if os.path.isdir(d) for n in os.listdir(d))
        if not skel:
            return snpe_error(1002, "Unable to load the DSP skel library (check ADSP_LIBRARY_PATH)")
    try:
        dlc = read_dlc(a["--container"])
    except RuntimeError as e:
        return snpe_error(1008, str(e))
    if runtime in ("DSP", "AIP") and not dlc["quantized"] and (vtuple() >= (2, 0, 0) or runtime == "AIP"):
        return snpe_error(1411, "Non-quantized DLC is not supported by the %s runtime" % runtime)
    if ("--userbuffer_tf8" in a or "--userbuffer_tfN" in a) and runtime not in ("DSP", "AIP"):
        return snpe_error(1311, "userbuffer tf8 is only supported on DSP/AIP")
    try:
        n = _read_input_list(a["--input_list"], dlc, absolute=False)
    except RuntimeError as e:
        return snpe_error(1009, str(e))
    if dlc.get("fault") == "netrun_crash":
        return snpe_error(910, "SNPE_ERRORCODE_CONTEXT_ERROR: Failed to execute the network")
    out_dir = a.get("--output_dir", "output")
    os.makedirs(out_dir, exist_ok=True)
    for i in range(n):
        os.makedirs(os.path.join(out_dir, "Result_%d" % i), exist_ok=True)
    speed = RUNTIME_SPEED[runtime] / PERF_FACTOR[pp]
    if "--userbuffer_float" in a:
        speed *= 1.02
    layers = []
    for layer in dlc["layers"]:
        if layer["type"] == "data":
            us = 2.0 + _numel(layer["dims"]) / 20000.0
        else:
            us = 3.0 + max(layer["macs"], 1) / speed
        layers.append({"name": layer["name"], "type": layer["type"], "us": us * random.uniform(0.985, 1.015)})
    overhead = 25.0 if runtime == "CPU" else 120.0
    total = sum(l["us"] for l in layers) + overhead
    log = {"sdk": VERSION, "created": time.time(), "runtime": runtime, "perf_profile": pp, "inferences": n,
           "layers": layers, "total_us": total, "forward_us": total - overhead * 0.4,
           "init_us": 20000.0 if runtime == "CPU" else 150000.0, "profiling_level": level}
    payload = DIAG_MAGIC + json.dumps(log).encode()
    if dlc.get("fault") == "corrupt_diag":
        payload = payload[: len(payload) // 2]
    if level != "off":
        with open(os.path.join(out_dir, "SNPEDiag_0.log"), "wb") as f:
            f.write(payload)
    print("-------------------------------------------------------------------------------")
    print("Model String: N/A")
    print("SNPE v%s" % VERSION)
    print("-------------------------------------------------------------------------------")
    print("Processing DNN input(s):")
    print("Successfully executed!")
    return 0


TOOLS = {
    "snpe-onnx-to-dlc": tool_onnx_to_dlc, "snpe-dlc-info": tool_dlc_info, "snpe-dlc-quantize": tool_dlc_quantize,
    "snpe-dlc-quant": tool_dlc_quant, "snpe-dlc-graph-prepare": tool_graph_prepare,
    "snpe-diagview": tool_diagview, "snpe-net-run": tool_net_run,
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    return TOOLS[TOOL](argv)
