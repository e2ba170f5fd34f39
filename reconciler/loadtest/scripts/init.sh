#!/bin/busybox sh
# shellcheck shell=sh
# The load test's guest: PID 1 of a throwaway VM with no disk and no network.
# It loads the driver under test, captures syscalls with scap-open while making marker
# mkdirs, removes the driver and powers off. Every finding is one "@@lt <key> <value>" line
# on the console (ttyS0), which the host reads from the VM log; the kernel's own messages
# (oops, BUG, WARNING, insmod errors) land on the same console, between them.
# /loadtest/params (sourced) sets: KIND (kmod|ebpf), MODULE (the module's name),
# DEVICE (its device name), MKDIR_EVENT (the event number scap-open prints for mkdir's exit),
# TOKEN (unique to this run), MARKERS (how many mkdirs), SECONDS_CAPTURE (how long
# to wait for the last marker to be read back).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# shellcheck disable=SC1091  # written per run by the host (guest.params)
. /loadtest/params

say() { echo "@@lt $*"; }
finish() {
  say tainted "$(cat /proc/sys/kernel/tainted)"
  say end "$1"
  sync
  poweroff -f
}

say begin "$(uname -r)"
if [ "$KIND" = kmod ]; then
  if insmod /loadtest/driver.ko; then say insmod ok; else say insmod "failed:$?"; finish 1; fi
  if grep -q " $MODULE\$" /proc/devices; then say proc-devices listed; else say proc-devices missing; fi
  count=0
  for node in /dev/"$DEVICE"[0-9]*; do
    [ -c "$node" ] && count=$((count + 1))
  done
  say devices "$count"
  source_flag=--kmod
else
  # the bpf engine needs the probe's maps and tracepoints: debugfs/tracefs as a host has them
  mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
  source_flag="--bpf /loadtest/driver.o"
fi

# scap-open prints every mkdir exit event with its path; it stops on SIGINT, printing stats
# shellcheck disable=SC2086 # source_flag is two words for the probe
/loadtest/scap-open $source_flag --evt_type "$MKDIR_EVENT" --num_events 1000000000 \
  >/tmp/capture.txt 2>&1 &
pid=$!
waited=0
until grep -q "Live capture in progress" /tmp/capture.txt 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 600 ]; then break; fi
  sleep 0.1
  waited=$((waited + 1))
done
if grep -q "Live capture in progress" /tmp/capture.txt; then
  say capture started
  # scap-open prints "in progress" just before it starts the capture: warm-up mkdirs until
  # one shows in the capture, so every marker after it falls inside the capture
  n=0
  while [ "$n" -lt 300 ] && ! grep -q "lt-warmup-$TOKEN-" /tmp/capture.txt; do
    mkdir "/tmp/lt-warmup-$TOKEN-$n"
    sleep 0.1
    n=$((n + 1))
  done
  say warmup "$n"
  i=0
  while [ "$i" -lt "$MARKERS" ]; do
    mkdir "/tmp/lt-marker-$TOKEN-$i"
    i=$((i + 1))
  done
  # until the last marker is read back (scap-open prints as it reads), at most the limit
  last="lt-marker-$TOKEN-$((MARKERS - 1))"
  n=0
  while [ "$n" -lt $((SECONDS_CAPTURE * 20)) ] && ! grep -q "$last" /tmp/capture.txt; do
    sleep 0.05
    n=$((n + 1))
  done
else
  say capture "not-started"
fi
# SIGINT makes scap-open print its stats and exit; one that hangs is killed after 30 s
kill -INT "$pid" 2>/dev/null
( sleep 30; kill -KILL "$pid" 2>/dev/null ) &
wait "$pid"
say scap-open-exit "$?"
echo "@@lt capture-output-begin"
# without scap-open's per-syscall counts ("- [name__enter]: n"): hundreds of console lines
grep -v '^- \[' /tmp/capture.txt
echo "@@lt capture-output-end"

if [ "$KIND" = kmod ]; then
  if rmmod "$MODULE"; then say rmmod ok; else say rmmod "failed:$?"; fi
fi
finish 0
