#!/usr/bin/python3
"""Times scipy.ndimage.gaussian_filter(x, sigma=4) on one 518x518 float32 map, AnomalyCLIP's
smoothing step, for comparison with BenchmarkGaussian. Prints the median of 15 runs of 10 calls.

    /usr/bin/python3 speed.py
"""
import statistics
import timeit

import numpy as np
import scipy.ndimage as ndi

x = np.random.RandomState(0).rand(518, 518).astype(np.float32)
runs = [t / 10 for t in timeit.repeat(lambda: ndi.gaussian_filter(x, sigma=4), number=10, repeat=15)]
print("scipy %s gaussian_filter 518x518 sigma=4: median %.2f ms" % (
    __import__("scipy").__version__, statistics.median(runs) * 1e3))
