"""Regenerate src/gpuinfra/catalog/data/node_shapes.csv from the packaged data.

Node shapes come from two sources, each row keeps its own:
- cloud GPU instance types in the SkyPilot-derived price catalog (vCPUs, host memory, GPU count);
- the distinct node shapes of the Alibaba GPU trace v2023 (openb) GPU node list.

Run: python scripts/make_node_shapes.py
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src/gpuinfra/catalog/data"

# price-catalog accelerator name -> gpuinfra catalog GPU name
ACCEL = {
    "A100": "A100-40GB",
    "A100-80GB": "A100-80GB",
    "A10G": "A10G",
    "A10": "A10",
    "B200": "B200",
    "H100": "H100-SXM",
    "H200": "H200",
    "L4": "L4",
    "L40S": "L40S",
    "T4": "T4",
    "V100": "V100-16GB",
    "V100-32GB": "V100-32GB",
    "P100": "P100",
}
OPENB = {"V100M16": "V100-16GB", "V100M32": "V100-32GB"}


def main() -> None:
    rows: dict[str, dict[str, object]] = {}
    with open(DATA / "prices/gpu_instance_prices.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["price_basis"] != "instance" or r["accelerator"] not in ACCEL:
                continue
            name = f"{r['cloud']}:{r['instance_type']}"
            gpus = int(r["gpu_count"])
            if r["instance_type"] == "Standard_ND96isr_H100_v5":
                gpus = 8  # upstream lists 12; the product has 8 H100s (prices/SOURCE.md caveat 3)
            rows.setdefault(
                name,
                {
                    "name": name,
                    "gpu_model": ACCEL[r["accelerator"]],
                    "gpus": gpus,
                    "cpu_milli": int(float(r["vcpus"]) * 1000),
                    "memory_mib": int(round(float(r["host_mem_gib"]) * 1024)),
                    "source": f"skypilot-catalog {r['source_file']} (vCPUs, MemoryGiB, AcceleratorCount); "
                    "see catalog/data/prices/SOURCE.md",
                },
            )
    with gzip.open(DATA / "traces/openb/openb_node_list_gpu_node.csv.gz", "rt", newline="") as fh:
        for r in csv.DictReader(fh):
            model = OPENB.get(r["model"], r["model"])
            cpu, mem, gpus = int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"])
            name = f"openb:{r['model']}-{gpus}g-{cpu // 1000}c-{mem // 1024}gi"
            rows.setdefault(
                name,
                {
                    "name": name,
                    "gpu_model": model,
                    "gpus": gpus,
                    "cpu_milli": cpu,
                    "memory_mib": mem,
                    "source": "Alibaba GPU trace v2023 openb_node_list_gpu_node.csv (a node shape seen in the trace)",
                },
            )
    with open(DATA / "node_shapes.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["name", "gpu_model", "gpus", "cpu_milli", "memory_mib", "source"])
        w.writeheader()
        for name in sorted(rows):
            w.writerow(rows[name])
    print(f"wrote {len(rows)} node shapes")


if __name__ == "__main__":
    main()
