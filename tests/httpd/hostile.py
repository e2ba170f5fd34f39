"""Request targets that try to leave the store or reach what is not served.

Shared by the pure routing tests and the socket tests: every one must end in 400 or 404.
"""

from __future__ import annotations

ARTIFACT = "falco_debian_5.10.0-14-cloud-amd64_1.ko"

HOSTILE_TARGETS: tuple[str, ...] = (
    # plain and encoded dot-dot
    "/../secret.txt",
    "/../../../../etc/passwd",
    "/2.0.0%2Bdriver/x86_64/../../../secret.txt",
    "/2.0.0+driver/x86_64/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/2.0.0%2Bdriver/x86_64/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}%2f..%2f..%2f..%2fsecret.txt",
    # double encoding
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/2.0.0%252Bdriver/x86_64/" + ARTIFACT,
    # backslashes, raw and encoded
    "/..\\secret.txt",
    "/2.0.0+driver\\..\\..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/2.0.0%2Bdriver/x86_64/..%5C..%5C..%5Csecret.txt",
    # overlong and invalid UTF-8 for '.', '/' and '\'
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%c1%9c..%c1%9csecret.txt",
    "/%f0%80%80%ae%f0%80%80%ae/secret.txt",
    "/%ff%fe/secret.txt",
    "/%u002e%u002e/secret.txt",
    "/%",
    "/%zz",
    "/%2",
    # NUL and control characters
    "/%00",
    f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}%00",
    f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}%00.sha256",
    "/2.0.0%2Bdriver/x86_64/%0d%0aSet-Cookie:x",
    "/%7f",
    # absolute paths and other roots
    "//etc/passwd",
    "///etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "/%2fetc%2fpasswd",
    "/secret.txt",
    "etc/passwd",
    "*",
    # dot segments, hidden and temp files, empty segments
    f"/./2.0.0+driver/x86_64/{ARTIFACT}",
    f"/2.0.0+driver/./x86_64/{ARTIFACT}",
    f"/2.0.0+driver//x86_64/{ARTIFACT}",
    f"/2.0.0+driver/x86_64//{ARTIFACT}",
    f"/2.0.0+driver/x86_64/.{ARTIFACT}.partial-0a1b2c3d",
    f"/2.0.0+driver/x86_64/{ARTIFACT}/",
    f"/2.0.0+driver/x86_64/{ARTIFACT}/..",
    "/2.0.0+driver/x86_64/.hidden.ko",
    "/%2e/index.json",
    "/index.json/..",
    "/healthz/../index.json",
    # directory listings and stray names
    "/",
    "/2.0.0+driver",
    "/2.0.0+driver/",
    "/2.0.0%2Bdriver/x86_64",
    "/2.0.0%2Bdriver/x86_64/",
    "/2.0.0%2Bdriver/x86_64/notes.txt",
    "/2.0.0%2Bdriver/i386/" + ARTIFACT,
    "/2.0.0%2Bdriver/x86_64/" + ARTIFACT + ".bak",
    "/2.0.0%2Bdriver/x86_64/extra/" + ARTIFACT,
)
