"""Load tests: a driver proven in a VM of the kernel it was built for, before a host gets it.

    result.py     the pure result value (passed/failed/untested, events, drops, ...)
    scan.py       pure: a VM's console log -> what the guest found, what the kernel said
    initramfs.py  pure: the guest's cpio archive
    userspace.py  scap-open from the driver's own libs tree, built once in the builder
    guest.py      one test: initramfs, boot (edges/vm/qemu.py), scan -> result
    scripts/      the guest's init and the guest userspace build, as real script files
"""
