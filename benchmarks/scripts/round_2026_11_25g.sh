#!/bin/bash
# Device round: the long GPU fuzz run (each test alone, stop at the first failure, no shrinking).
bash benchmarks/scripts/gpu_fuzz.sh kvcache:200:100 varlen:150:150 attention:150:230
