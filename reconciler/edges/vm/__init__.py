"""Throwaway virtual machines: QEMU (the only caller of ``qemu-system-*``) and the kernel
images it boots, taken from the distribution's own packages."""
