"""Facts as data: GPU models, node shapes, prices and packaged traces, each row with its source."""

from gpuinfra.catalog.gpus import GpuModel, gpu_model, gpu_models
from gpuinfra.catalog.nodes import NodeShape, node_shape, node_shapes
from gpuinfra.catalog.prices import PriceRow, gpu_hour_price, price_rows

__all__ = [
    "GpuModel",
    "NodeShape",
    "PriceRow",
    "gpu_hour_price",
    "gpu_model",
    "gpu_models",
    "node_shape",
    "node_shapes",
    "price_rows",
]
