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
# Every process costs milliseconds under emulation and competes with scap-open for the
# CPUs: the script reads files and waits with shell builtins, and /bin holds links for
# the few busybox applets it runs (in the initramfs; see guest.APPLETS).
export PATH=/bin
mount -a # /etc/fstab: /proc, /sys, /dev (devtmpfs)
# shellcheck disable=SC1091  # written per run by the host (guest.params)
. /loadtest/params

say() { echo "@@lt $*"; }
finish() {
  # cat: the shell's read takes a byte at a time, and this file answers only the first
  say tainted "$(cat /proc/sys/kernel/tainted)"
  say end "$1"
  poweroff -f # which syncs first; there is no disk
}

read -r release </proc/sys/kernel/osrelease
say begin "$release"
if [ "$KIND" = kmod ]; then
  if insmod /loadtest/driver.ko; then say insmod ok; else say insmod "failed:$?"; finish 1; fi
  listed=missing
  while read -r _major name; do
    if [ "$name" = "$MODULE" ]; then listed=listed; fi
  done </proc/devices
  say proc-devices "$listed"
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

# scap-open prints every mkdir exit event with its path, a line at a time (line-buffered);
# it stops on SIGINT, printing stats. The script follows its output through fd 4 and
# pauses on fd 3, a FIFO nobody writes to (read -t times out).
: >/tmp/capture.txt
mkfifo /tmp/pause
exec 3<>/tmp/pause 4</tmp/capture.txt
# shellcheck disable=SC2086 # source_flag is two words for the probe
/loadtest/scap-open $source_flag --evt_type "$MKDIR_EVENT" --num_events 1000000000 \
  >>/tmp/capture.txt 2>&1 3<&- 4<&- &
pid=$!
pause() {
  # shellcheck disable=SC3045,SC2034 # busybox's sh has read -t, with fractions of a second
  read -r -t 0.01 nothing <&3
}
partial=
# await PATTERN TICKS: read the capture on until a line matches PATTERN (a case pattern),
# pausing 10 ms while there is no new line, at most TICKS times; false when it ran out of
# ticks or scap-open ended without printing it
await() {
  ticks=0
  while :; do
    kill -0 "$pid" 2>/dev/null || ticks=$2 # ended: what it printed is all there is
    while IFS= read -r line <&4; do
      line="$partial$line"
      partial=
      # shellcheck disable=SC2254 # PATTERN is a pattern on purpose
      case $line in $1) return 0 ;; esac
    done
    partial="$partial$line" # a line scap-open is still writing
    [ "$ticks" -lt "$2" ] || return 1
    pause
    ticks=$((ticks + 1))
  done
}
if await "*Live capture in progress*" 6000; then
  say capture started
  # scap-open prints "in progress" just before it starts the capture: warm-up mkdirs (one
  # each 20 ms) until one shows in the capture, so every marker after it falls inside it
  n=0
  while [ "$n" -lt 1500 ] && kill -0 "$pid" 2>/dev/null; do
    mkdir "/tmp/lt-warmup-$TOKEN-$n"
    n=$((n + 1))
    if await "*/lt-warmup-$TOKEN-*" 2; then break; fi
  done
  say warmup "$n"
  i=0
  paths=
  while [ "$i" -lt "$MARKERS" ]; do
    paths="$paths /tmp/lt-marker-$TOKEN-$i"
    i=$((i + 1))
  done
  # shellcheck disable=SC2086 # one word per marker: one process makes them all, in order
  mkdir $paths
  # until the last marker is read back, at most the limit
  await "*/lt-marker-$TOKEN-$((MARKERS - 1))" $((SECONDS_CAPTURE * 100))
else
  say capture "not-started"
fi
# SIGINT makes scap-open print its stats and exit; one that hangs is killed after 30 s
kill -INT "$pid" 2>/dev/null
ticks=0
while kill -0 "$pid" 2>/dev/null && [ "$ticks" -lt 3000 ]; do
  pause
  ticks=$((ticks + 1))
done
kill -KILL "$pid" 2>/dev/null
wait "$pid"
say scap-open-exit "$?"
echo "@@lt capture-output-begin"
# the emulated serial console is slow: without scap-open's per-syscall counts ("- [name]:
# n", hundreds of lines) nor each event's header and lengths (its parameters stay)
grep -v -E -e '^- \[' -e '^(timestamp|tid|len|type|num params|param [0-9]+ len): ' \
  -e '^-+ ?(HEADER|LEN ARRAY|PARAMS)? ?$' /tmp/capture.txt
echo "@@lt capture-output-end"

if [ "$KIND" = kmod ]; then
  if rmmod "$MODULE"; then say rmmod ok; else say rmmod "failed:$?"; fi
fi
finish 0
