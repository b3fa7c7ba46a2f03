import csv
import statistics

import pytest

from gpuinfra.catalog import gpu_hour_price, gpu_model, gpu_models, node_shape, node_shapes
from gpuinfra.catalog._data import data_path
from gpuinfra.errors import UserError

REQUIRED = [
    "V100-16GB",
    "V100-32GB",
    "P100",
    "T4",
    "A10",
    "A10G",
    "L4",
    "L40S",
    "A100-40GB",
    "A100-80GB",
    "H100-SXM",
    "H100-PCIe",
    "H200",
    "B200",
    "G1",
    "G2",
    "G3",
]


def test_required_models_present_with_sources():
    names = {m.name for m in gpu_models()}
    assert set(REQUIRED) <= names
    for m in gpu_models():
        assert m.source.strip(), m.name
        assert m.evidence in {"P", "S", "D", "U"}


def test_disclosed_models_have_core_specs_and_opaque_have_none():
    for m in gpu_models():
        if m.opaque:
            assert m.memory_gib is None and m.sm_count is None and m.fp32_flops is None
        else:
            assert m.memory_gib and m.mem_bw_bytes_per_s and m.sm_count and m.fp32_flops and m.tdp_w


def test_visible_memory_below_nominal():
    # facts/gpu.md 1.2: software always sees less than the nominal (binary GiB) size
    for m in gpu_models():
        if m.memory_visible_mib:
            assert m.memory_visible_mib < m.memory_gib * 1024, m.name


@pytest.mark.parametrize(
    ("name", "sms", "lanes", "clock_ghz"),
    [
        ("V100-16GB", 80, 64, 1.53),
        ("A100-80GB", 108, 64, 1.41),
        ("H100-SXM", 132, 128, 1.98),
        ("L4", 58, 128, 2.04),
        ("L40S", 142, 128, 2.52),
        ("T4", 40, 64, 1.59),
    ],
)
def test_fp32_peak_matches_sm_times_lanes_times_clock(name, sms, lanes, clock_ghz):
    # facts/gpu.md 1.3: peak FP32 = SMs x FP32 lanes/SM x 2 x clock
    m = gpu_model(name)
    assert m.sm_count == sms
    assert m.fp32_flops == pytest.approx(sms * lanes * 2 * clock_ghz * 1e9, rel=0.01)


def test_aliases_resolve_case_insensitively():
    assert gpu_model("V100M32").name == "V100-32GB"
    assert gpu_model("v100m16").name == "V100-16GB"
    assert gpu_model("h100").name == "H100-SXM"


def test_unknown_model_suggests_a_name():
    with pytest.raises(UserError) as e:
        gpu_model("H10O", where="scenario.yaml:4")
    msg = str(e.value)
    assert "scenario.yaml:4" in msg and "unknown GPU model 'H10O'" in msg and "Did you mean" in msg


def test_node_shapes_refer_to_catalog_models():
    shapes = node_shapes()
    assert len(shapes) > 20
    assert node_shape("aws:p5.48xlarge").gpus == 8
    assert node_shape("aws:p5.48xlarge").gpu_model == "H100-SXM"
    assert node_shape("openb:G2-8g-96c-384gi").cpu_milli == 96000
    with pytest.raises(UserError):
        node_shape("aws:p5.49xlarge")


def test_price_is_median_per_gpu_hour_of_catalog_rows():
    # recompute by hand from the packaged CSV, independently of the loader
    with open(data_path("prices", "gpu_instance_prices.csv")) as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["accelerator"] == "T4" and r["cloud"] == "aws" and r["region"] == "us-east-1" and r["price_usd_hr"]
        ]
    expected = statistics.median(float(r["price_usd_hr"]) / int(r["gpu_count"]) for r in rows)
    got = gpu_hour_price("T4", cloud="aws", region="us-east-1")
    assert got.on_demand_usd == pytest.approx(expected)
    assert got.rows_used == len(rows)
    # facts/cost-lifecycle-security.md 1.1 anchor: g4dn.xlarge (1 x T4) us-east-1 is 0.526 USD/h
    assert any(float(r["price_usd_hr"]) == 0.526 for r in rows if r["instance_type"] == "g4dn.xlarge")


def test_spot_equal_to_on_demand_is_not_a_spot_price():
    from gpuinfra.catalog.prices import PriceRow

    r = PriceRow("aws", "p5.48xlarge", "H100", 8, "us-east-1", 55.04, 55.04, "instance", "x")
    assert r.spot_per_gpu_hr is None
    r2 = PriceRow("aws", "p5.48xlarge", "H100", 8, "us-east-1", 55.04, 17.63, "instance", "x")
    assert r2.spot_per_gpu_hr == pytest.approx(17.63 / 8)


def test_opaque_model_has_no_price():
    with pytest.raises(UserError, match="no price"):
        gpu_hour_price("G2")


def test_a10_rows_are_per_gpu_of_whole_gpu_azure_vms_and_the_spread_explains_the_median():
    """The newcomer's question: A10 at 4.16 USD/GPU-h, above A100-80GB. The rows are Azure's whole-A10
    VMs (NV36ads/NV36adms 1 GPU, NV72ads 2 GPUs, per the Azure size table) divided by their GPUs; the
    median sits among the memory-heavy NV36adms rows. The spread covers exactly the median's rows."""
    from gpuinfra.catalog.prices import price_rows, price_spread

    with open(data_path("prices", "gpu_instance_prices.csv")) as fh:
        raw = [r for r in csv.DictReader(fh) if r["accelerator"] == "A10"]
    assert {r["cloud"] for r in raw} == {"azure"}
    nv72 = [r for r in raw if r["instance_type"] == "Standard_NV72ads_A10_v5"][0]
    row = [r for r in price_rows() if r.instance_type == nv72["instance_type"] and r.region == nv72["region"]][0]
    assert row.on_demand_per_gpu_hr == pytest.approx(float(nv72["price_usd_hr"]) / 2)  # divided by its 2 GPUs
    p = gpu_hour_price("A10")
    spread = price_spread("A10")
    assert sum(s["rows"] for s in spread) == p.rows_used == len(raw)
    lo = min(s["on_demand_min"] for s in spread)
    hi = max(s["on_demand_max"] for s in spread)
    assert lo <= p.on_demand_usd <= hi


def test_a10_on_aws_names_the_clouds_that_list_it_and_the_a10g():
    from gpuinfra.catalog.prices import price_rows

    with pytest.raises(UserError) as e:
        gpu_hour_price("A10", cloud="aws")
    clouds = sorted({r.cloud for r in price_rows() if r.accelerator == "A10"})
    assert f"A10 is listed for {', '.join(clouds)}" in e.value.fix and "A10G" in e.value.fix


def test_catalog_prices_prints_money_to_four_significant_digits():
    from gpuinfra.cli.catalog import usd
    from tests.clirunner import gi

    p = gpu_hour_price("A10G", cloud="aws")
    r = gi("catalog", "prices", "A10G", "--cloud", "aws")
    assert r.returncode == 0, r.output
    head = r.stdout.splitlines()[0]
    assert f"on-demand {usd(p.on_demand_usd)} USD/GPU-h, spot {usd(p.spot_usd)} USD/GPU-h" in head
    assert float(usd(p.spot_usd)) == pytest.approx(p.spot_usd, rel=5e-4)  # rounded, not truncated
    assert repr(p.spot_usd) not in r.stdout or len(repr(p.spot_usd)) <= 6  # no float repr noise
    assert usd(0.6057874999999999) == "0.6058" and usd(2.0103175) == "2.010" and usd(None) == "-"
