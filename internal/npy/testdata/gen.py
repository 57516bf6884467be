#!/usr/bin/python3
"""Writes the .npy files npy_test.go reads (numpy's own writer).
Usage: cd clip/npy/testdata && /usr/bin/python3 gen.py"""
import numpy as np

np.save("f4_2x3.npy", np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5)
np.save("f8_4.npy", np.array([1.5, -2, 3, 1e-3]))
