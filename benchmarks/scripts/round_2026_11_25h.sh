#!/bin/bash
# Device round: the GPU fuzz run again after the criterion fix (D-term magnitude for dq/dk), same example order.
bash benchmarks/scripts/gpu_fuzz.sh varlen:60:130 attention:100:200 kvcache:150:100
