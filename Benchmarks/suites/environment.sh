# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
suite_environment() {
    { echo "kernel $(uname -r)"
      echo "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
      echo "cpus $(nproc)"
      echo "hypervisor_flag $(grep -qw hypervisor /proc/cpuinfo && echo yes || echo no)"
      echo "rdma_device $DEV"
      echo "devdax $DAXPIN_DEVDAX_PATH"
      echo "lease_break_time $(cat /proc/sys/fs/lease-break-time)"
      # Named in every report's header (Scripts/bench and Scripts/bench-compare export them).
      echo "commit ${DAXPIN_BENCH_COMMIT:-?}"
      echo "rdma_core ${DAXPIN_BENCH_RDMA_CORE:-?}"
      echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
      echo "settings ${DAXPIN_BENCH_SETTINGS:-?}"
    } >"$OUT/environment.txt"
}
