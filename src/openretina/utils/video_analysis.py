"""Reference import path for the kernel-analysis helpers; they live in :mod:`openretina.plotting.kernels`."""

from openretina.plotting.kernels import butter_lowpass_filter, calculate_fft, decompose_kernel, weighted_main_frequency

__all__ = ["butter_lowpass_filter", "calculate_fft", "decompose_kernel", "weighted_main_frequency"]
