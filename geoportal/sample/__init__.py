"""The synthetic Taichung-like agency corpus that tests and benchmarks run on."""

from geoportal.sample.generator import SampleError, SampleResult, generate, plan

__all__ = ["SampleError", "SampleResult", "generate", "plan"]
