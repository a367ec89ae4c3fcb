#!/bin/bash
# Device round: each GPU fuzz test alone, stop at the first failure, no shrinking (so the report comes back).
bash benchmarks/scripts/gpu_fuzz.sh attention:300:140 varlen:300:140 kvcache:300:140
