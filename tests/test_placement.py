"""Where the graph ran: onnxruntime's profiled placement, OpenVINO's runtime graph, the bench JSON and table."""

from __future__ import annotations

import re
import tempfile
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pocketgan import runtime
from pocketgan.runtime.placement import from_ort_profile

from conftest import FAST, SIZE

CPU = "CPUExecutionProvider"


def row_cells(out: str, row: str) -> list[str]:
    """The value cells of one row of the printed results table (``│ placement │ CPU 9/9 │ … │``)."""
    line = next(line for line in out.splitlines() if re.match(rf"^│ {re.escape(row)}\s+│", line))
    return [cell.strip() for cell in line.split("│")[2:-1]]


def optimized_op_types(path, tmp_path) -> Counter[str]:
    """The op types of the graph onnxruntime runs on the CPU after its optimizations (the level the ort
    backend uses), from the optimized model it writes: an independent count of the nodes it executes."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    return Counter(node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def test_every_node_of_the_optimized_graph_is_counted_on_the_cpu(artifacts, tmp_path, monkeypatch):
    expected = optimized_op_types(artifacts.static, tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the profile is written
    runner = runtime.load(artifacts.static, threads=1)
    placement = runner.placement({"input": np.zeros((1, 3, SIZE, SIZE), np.float32)})
    assert placement.by_provider == {CPU: sum(expected.values())} and placement.nodes > 20
    assert placement.op_types == dict(expected)
    assert placement.first_choice == CPU and placement.fallback_ops == {}
    assert placement.summary() == f"CPU {placement.nodes}/{placement.nodes}"
    assert list(scratch.iterdir()) == []  # the profile JSON was read and deleted


def _node(name: str, op: str, provider: str, index: int) -> dict:
    return {"cat": "Node", "name": f"{name}_kernel_time", "args": {"op_name": op, "provider": provider,
            "node_index": str(index)}}  # fmt: skip


def test_ops_outside_the_first_choice_provider_are_counted_by_op_type():
    one_run = [
        _node("TRTKernel_graph_main_0", "TRTKernel_graph_main_0", "TensorrtExecutionProvider", 0),
        _node("resize_a", "Resize", CPU, 1),
        _node("conv_1", "Conv", "CUDAExecutionProvider", 2),
        _node("resize_b", "Resize", CPU, 3),
        _node("pad", "Pad", CPU, 4),
    ]
    session = {"cat": "Session", "name": "model_run", "args": {}}
    events = [session, *one_run, session, *one_run, {"cat": "Node", "name": "fence_before", "args": {}}]
    placement = from_ort_profile(events, "TensorrtExecutionProvider", runs=2)
    assert placement.by_provider == {"TensorrtExecutionProvider": 1, CPU: 3, "CUDAExecutionProvider": 1}
    assert placement.fallback_ops == {"Resize": 2, "Conv": 1, "Pad": 1} and placement.nodes == 5
    assert placement.source == "onnxruntime profile (2 runs)"
    assert placement.summary() == "Tensorrt 1/5, CPU 3, CUDA 1 (Resize 2, Conv 1, Pad 1)"


@pytest.fixture(scope="module")
def openvino_irs(tiny_student, tmp_path_factory):
    """``{precision: model.xml}``: fp32 and NNCF-int8 (8 synthetic calibration inputs) IRs of the tiny student."""
    pytest.importorskip("openvino")
    from pocketgan.export import ExportOptions, export_model

    root = tmp_path_factory.mktemp("placement-ir")
    for precision in ("fp32", "int8"):
        options = ExportOptions(size=(SIZE, SIZE), precision=precision, calibration_samples=8)
        export_model(tiny_student, "openvino", root / precision, options)
    return {precision: root / precision / "model.xml" for precision in ("fp32", "int8")}


def _ir_placement(path):
    runner = runtime.load(path, backend="openvino", threads=1)
    return runner.placement({runner.input_name: np.zeros((1, 3, SIZE, SIZE), np.float32)})


def test_an_openvino_ir_runs_on_the_cpu_in_float32(openvino_irs):
    placement = _ir_placement(openvino_irs["fp32"])
    assert placement.source == "openvino runtime model" and placement.first_choice == "CPU"
    assert placement.by_provider == {"CPU": placement.nodes} and placement.nodes > 20
    assert placement.fallback_ops == {} and placement.precisions == {"f32": placement.nodes}  # f32 inference hint
    assert {"Convolution", "MVN"} <= set(placement.op_types) and "Const" not in placement.op_types


def test_an_int8_ir_runs_its_convolutions_in_integer_precision(openvino_irs):
    import openvino as ov

    placement = _ir_placement(openvino_irs["int8"])
    integer = placement.precisions.get("u8", 0) + placement.precisions.get("i8", 0)
    ir_ops = ov.Core().read_model(openvino_irs["int8"]).get_ops()
    convolutions = sum(op.get_type_name() == "Convolution" for op in ir_ops)
    assert placement.by_provider == {"CPU": placement.nodes} and convolutions > 0
    assert integer >= convolutions // 2, placement.precisions  # the quantized convolutions ran in u8/i8
    assert re.search(r"; .*\b[ui]8 \d+", placement.summary()), placement.summary()


def test_the_bench_json_and_table_carry_the_placement_of_each_artifact(bench, artifacts, openvino_irs):
    run = bench("pocketgan-bench", artifacts.static, openvino_irs["int8"], *FAST)
    assert run.code == 0, run.err
    onnx_result, ir_result = run.results
    nodes = onnx_result["placement"]["nodes"]
    assert onnx_result["placement"]["by_provider"] == {CPU: nodes} and nodes > 20
    assert ir_result["placement"]["by_provider"] == {"CPU": ir_result["placement"]["nodes"]}
    assert set(ir_result["placement"]["precisions"]) & {"u8", "i8"}
    onnx_cell, ir_cell = row_cells(run.out, "placement")
    assert onnx_cell == f"CPU {nodes}/{nodes}" and ir_cell.startswith(f"CPU {ir_result['placement']['nodes']}/")


@pytest.mark.parametrize("program", ["pocketgan", "pocketgan-bench"])
def test_no_placement_leaves_it_out(bench, artifacts, program):
    run = bench(program, artifacts.static, *FAST, "--no-placement")
    assert run.code == 0, run.err
    assert "placement" not in run.results[0] and not re.search(r"^│ placement", run.out, re.MULTILINE)
