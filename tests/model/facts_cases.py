"""Real hosts, as their files say: `uname -r`, `uname -v` and os-release texts.

The strings come from the distros themselves or from loader logs quoted in falcosecurity
issues (cited beside them), so the naming rules are checked against what hosts print.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.edges.host.facts import HostFacts, parse_os_release

DEBIAN_11 = """\
PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
NAME="Debian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""
DEBIAN_10 = DEBIAN_11.replace("11 (bullseye)", "10 (buster)").replace(
    '"11"', '"10"').replace("bullseye", "buster")
DEBIAN_12 = DEBIAN_11.replace("11 (bullseye)", "12 (bookworm)").replace(
    '"11"', '"12"').replace("bullseye", "bookworm")

UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
"""
UBUNTU_1804 = """\
NAME="Ubuntu"
VERSION="18.04.6 LTS (Bionic Beaver)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 18.04.6 LTS"
VERSION_ID="18.04"
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
VERSION_CODENAME=bionic
UBUNTU_CODENAME=bionic
"""

AMAZON_LINUX_2 = """\
NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2"
HOME_URL="https://amazonlinux.com/"
"""
# Quoted by FedeDP in falcosecurity/falco#2494 (docker run amazonlinux:2022/2023).
AMAZON_LINUX_2022 = """\
NAME="Amazon Linux"
VERSION="2022"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2022"
PLATFORM_ID="platform:al2022"
PRETTY_NAME="Amazon Linux 2022"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2022"
HOME_URL="https://aws.amazon.com/linux/"
BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2022"
SUPPORT_END="2027-11-01"
"""
AMAZON_LINUX_2023 = AMAZON_LINUX_2022.replace("2022", "2023").replace("2027", "2028")
AMAZON_LINUX_1 = """\
NAME="Amazon Linux AMI"
VERSION="2018.03"
ID="amzn"
ID_LIKE="rhel fedora"
VERSION_ID="2018.03"
PRETTY_NAME="Amazon Linux AMI 2018.03"
ANSI_COLOR="0;33"
CPE_NAME="cpe:/o:amazon:linux:2018.03:ga"
HOME_URL="http://aws.amazon.com/amazon-linux-ami/"
"""

CENTOS_7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"

CENTOS_MANTISBT_PROJECT="CentOS-7"
CENTOS_MANTISBT_PROJECT_VERSION="7"
REDHAT_SUPPORT_PRODUCT="centos"
REDHAT_SUPPORT_PRODUCT_VERSION="7"

"""
CENTOS_8 = """\
NAME="CentOS Linux"
VERSION="8"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="8"
PLATFORM_ID="platform:el8"
PRETTY_NAME="CentOS Linux 8"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:8"
HOME_URL="https://centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"
CENTOS_MANTISBT_PROJECT="CentOS-8"
CENTOS_MANTISBT_PROJECT_VERSION="8"
"""
RHEL_8 = """\
NAME="Red Hat Enterprise Linux"
VERSION="8.6 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.6"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.6 (Ootpa)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/red_hat_enterprise_linux/8/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"
"""
FEDORA_39 = """\
NAME="Fedora Linux"
VERSION="39 (Cloud Edition)"
ID=fedora
VERSION_ID=39
VERSION_CODENAME=""
PLATFORM_ID="platform:f39"
PRETTY_NAME="Fedora Linux 39 (Cloud Edition)"
ANSI_COLOR="0;38;2;60;110;180"
LOGO=fedora-logo-icon
CPE_NAME="cpe:/o:fedoraproject:fedora:39"
DEFAULT_HOSTNAME="fedora"
HOME_URL="https://fedoraproject.org/"
SUPPORT_END=2024-11-12
VARIANT="Cloud Edition"
VARIANT_ID=cloud
"""
FLATCAR = """\
NAME="Flatcar Container Linux by Kinvolk"
ID=flatcar
ID_LIKE=coreos
VERSION=3510.2.5
VERSION_ID=3510.2.5
BUILD_ID=2023-07-14-1730
SYSEXT_LEVEL=1.0
PRETTY_NAME="Flatcar Container Linux by Kinvolk 3510.2.5 (Oklo)"
ANSI_COLOR="38;5;75"
HOME_URL="https://flatcar.org/"
BUG_REPORT_URL="https://issues.flatcar.org"
FLATCAR_BOARD="amd64-usr"
CPE_NAME="cpe:2.3:o:flatcar-linux:flatcar_linux:3510.2.5:*:*:*:*:*:*:*"
"""
BUILDROOT = """\
NAME=Buildroot
VERSION=2021.02.12
ID=buildroot
VERSION_ID=2021.02.12
PRETTY_NAME="Buildroot 2021.02.12"
"""
BOTTLEROCKET = """\
NAME=Bottlerocket
ID=bottlerocket
VERSION="1.11.1 (aws-k8s-1.24)"
PRETTY_NAME="Bottlerocket OS 1.11.1 (aws-k8s-1.24)"
VARIANT_ID=aws-k8s-1.24
VERSION_ID=1.11.1
BUILD_ID=2b3b8cab
HOME_URL="https://github.com/bottlerocket-os/bottlerocket"
SUPPORT_URL="https://github.com/bottlerocket-os/bottlerocket/discussions"
BUG_REPORT_URL="https://github.com/bottlerocket-os/bottlerocket/issues"
"""
TALOS = """\
NAME="Talos"
ID=talos
VERSION_ID=v1.4.5
PRETTY_NAME="Talos (v1.4.5)"
HOME_URL="https://www.talos.dev/"
BUG_REPORT_URL="https://github.com/siderolabs/talos/issues"
VENDOR_NAME="Sidero Labs"
VENDOR_URL="https://www.siderolabs.com/"
"""
COS = """\
NAME="Container-Optimized OS"
ID=cos
PRETTY_NAME="Container-Optimized OS from Google"
HOME_URL="https://cloud.google.com/container-optimized-os/docs"
BUG_REPORT_URL="https://cloud.google.com/container-optimized-os/docs/resources/support-policy#contact_us"
GOOGLE_METRICS_PRODUCT_ID=26
GOOGLE_CRASH_ID=Lakitu
VERSION=105
VERSION_ID=105
BUILD_ID=17412.226.28
"""
ARCH = """\
NAME="Arch Linux"
PRETTY_NAME="Arch Linux"
ID=arch
BUILD_ID=rolling
ANSI_COLOR="38;2;23;147;209"
HOME_URL="https://archlinux.org/"
DOCUMENTATION_URL="https://wiki.archlinux.org/"
LOGO=archlinux-logo
"""
OPENSUSE_LEAP = """\
NAME="openSUSE Leap"
VERSION="15.5"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.5"
PRETTY_NAME="openSUSE Leap 15.5"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:opensuse:leap:15.5"
"""
PHOTON = """\
NAME="VMware Photon OS"
VERSION="3.0"
ID=photon
VERSION_ID=3.0
PRETTY_NAME="VMware Photon OS/Linux"
"""


@dataclass(frozen=True)
class Host:
    release: str
    version: str
    os_release: str | None
    machine: str = "x86_64"
    minikube_version: str | None = None
    legacy: tuple[str, ...] = field(default=())
    os_release_at: str = "etc/os-release"

    def facts(self) -> HostFacts:
        pairs = parse_os_release(self.os_release) if self.os_release is not None else {}
        return HostFacts(
            hostname="host-1",
            kernel_release=self.release,
            kernel_version=self.version,
            machine=self.machine,
            os_id=pairs.get("ID", ""),
            os_version_id=pairs.get("VERSION_ID", ""),
            os_release=tuple(sorted(pairs.items())),
            os_release_file=self.os_release_at if self.os_release is not None else "",
            minikube_version=self.minikube_version,
            legacy_release_files=self.legacy,
        )


HOSTS: dict[str, Host] = {
    # falcosecurity/falco#2625: Debian 10 kernel as reported after 0.35.0.
    "debian10": Host("4.19.0-24-amd64", "#1 SMP Debian 4.19.282-1 (2023-04-29)", DEBIAN_10),
    "debian10-cloud": Host(
        "4.19.0-24-cloud-amd64", "#1 SMP Debian 4.19.282-1 (2023-04-29)", DEBIAN_10),
    "debian11": Host("5.10.0-20-amd64", "#1 SMP Debian 5.10.158-2 (2022-12-13)", DEBIAN_11),
    "debian11-cloud": Host(
        "5.10.0-14-cloud-amd64", "#1 SMP Debian 5.10.113-1 (2022-04-29)", DEBIAN_11),
    "debian11-bpo": Host(
        "5.10.0-0.deb10.17-amd64", "#1 SMP Debian 5.10.136-1~deb10u3 (2022-09-06)", DEBIAN_10),
    "debian12": Host(
        "6.1.0-18-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)", DEBIAN_12),
    "debian12-cloud": Host(
        "6.1.0-18-cloud-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)", DEBIAN_12),
    "debian12-rt": Host(
        "6.1.0-18-rt-amd64", "#1 SMP PREEMPT_RT Debian 6.1.76-1 (2024-02-01)", DEBIAN_12),
    "debian12-arm64": Host(
        "6.1.0-18-arm64", "#1 SMP Debian 6.1.76-1 (2024-02-01)", DEBIAN_12, machine="aarch64"),
    "ubuntu-generic": Host(
        "5.15.0-46-generic", "#49-Ubuntu SMP Thu Aug 4 18:03:25 UTC 2022", UBUNTU_2204),
    "ubuntu-hwe": Host(
        "6.2.0-26-generic", "#26~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Thu Jul 13 16:27:29 UTC 2023",
        UBUNTU_2204),
    # falcosecurity/falco#1941
    "ubuntu1804": Host(
        "4.15.0-167-generic", "#175-Ubuntu SMP Wed Jan 5 01:56:07 UTC 2022", UBUNTU_1804),
    "ubuntu-aws": Host(
        "5.15.0-1009-aws", "#11-Ubuntu SMP Thu May 26 19:39:49 UTC 2022", UBUNTU_2204),
    "ubuntu-aws-hwe": Host(
        "5.4.0-1103-aws", "#111~18.04.1-Ubuntu SMP Tue May 23 20:04:10 UTC 2023", UBUNTU_1804),
    # falcosecurity/falco#2853 (the loader printed kernel version=47)
    "ubuntu-gke": Host(
        "5.15.0-1042-gke", "#47-Ubuntu SMP Thu Aug 31 17:59:25 UTC 2023", UBUNTU_2204),
    "ubuntu-azure": Host(
        "5.15.0-1049-azure", "#56-Ubuntu SMP Wed Sep 20 19:25:05 UTC 2023", UBUNTU_2204),
    # falcosecurity/kernel-crawler#37: 0.32 asked for ubuntu-generic_5.4.0-1083-gcp_91
    "ubuntu-gcp": Host(
        "5.4.0-1083-gcp", "#91~18.04.1-Ubuntu SMP Fri Jul 15 13:49:49 UTC 2022", UBUNTU_1804),
    # the loader's own example of a flavor with a suffix
    "ubuntu-aws-suffix": Host(
        "5.0.0-1028-aws-5.0", "#29-Ubuntu SMP Thu Mar 14 22:03:05 UTC 2019", UBUNTU_1804),
    # falcosecurity/falco#3671
    "amazonlinux2": Host(
        "4.14.355-280.672.amzn2.x86_64", "#1 SMP Tue Aug 12 10:56:08 UTC 2025", AMAZON_LINUX_2),
    "amazonlinux2022": Host(
        "5.15.73-45.135.amzn2022.x86_64", "#1 SMP Wed Oct 26 17:17:09 UTC 2022",
        AMAZON_LINUX_2022),
    "amazonlinux2023": Host(
        "6.1.55-75.123.amzn2023.x86_64", "#1 SMP PREEMPT_DYNAMIC Tue Sep 26 20:06:16 UTC 2023",
        AMAZON_LINUX_2023),
    "amazonlinux1": Host(
        "4.14.355-196.647.amzn1.x86_64", "#1 SMP Thu Jul 11 21:18:07 UTC 2024", AMAZON_LINUX_1),
    "centos7": Host("3.10.0-1160.el7.x86_64", "#1 SMP Mon Oct 19 16:18:59 UTC 2020", CENTOS_7),
    "centos8": Host(
        "4.18.0-348.7.1.el8_5.x86_64", "#1 SMP Wed Dec 22 13:25:12 UTC 2021", CENTOS_8),
    # falcosecurity/falco#2280 (modinfo vermagic)
    "rhel8": Host("4.18.0-372.26.1.el8_6.x86_64", "#1 SMP Sat Aug 27 22:04:59 EDT 2022", RHEL_8),
    "fedora39": Host(
        "6.5.6-300.fc39.x86_64", "#1 SMP PREEMPT_DYNAMIC Fri Oct  6 19:57:21 UTC 2023",
        FEDORA_39),
    "flatcar": Host("5.15.119-flatcar", "#1 SMP Fri Jul 14 16:56:11 -00 2023", FLATCAR),
    "minikube": Host(
        "5.10.57", "#1 SMP Fri Jun 17 00:53:44 UTC 2022", BUILDROOT,
        minikube_version="v1.26.0-1655407986-14197\n"),
    # falcosecurity/falco#2318: kernel-crawler's bottlerocket output
    "bottlerocket": Host("5.15.59", "#1 SMP Wed Nov 16 19:00:13 UTC 2022", BOTTLEROCKET),
    # falcosecurity/kernel-crawler#148: falco_talos_6.1.30-talos_1_v1.4.5
    "talos": Host("6.1.30-talos", "#1 SMP Fri Jun  2 16:23:41 UTC 2023", TALOS),
    "cos": Host("5.15.133+", "#1 SMP Sat Dec 30 13:01:38 UTC 2023", COS),
    "arch": Host(
        "6.6.9-arch1-1", "#1 SMP PREEMPT_DYNAMIC Tue, 02 Jan 2024 02:00:55 +0000", ARCH),
    "opensuse-leap": Host(
        "5.14.21-150500.55.39-default",
        "#1 SMP PREEMPT_DYNAMIC Tue Dec  5 10:06:35 UTC 2023 (2e4092e)", OPENSUSE_LEAP),
    "photon": Host("4.19.290-1.ph3", "#1-photon SMP Wed Aug 2 08:09:36 UTC 2023", PHOTON),
    # No os-release: the loaders fall back on the legacy release files.
    "old-centos": Host(
        "2.6.32-754.35.1.el6.x86_64", "#1 SMP Sat Nov 7 12:42:14 UTC 2020", None,
        legacy=("etc/centos-release", "etc/redhat-release")),
    "old-debian": Host(
        "3.16.0-11-amd64", "#1 SMP Debian 3.16.84-1 (2020-06-09)", None,
        legacy=("etc/debian_version",)),
    "old-rhel": Host(
        "2.6.32-754.35.1.el6.x86_64", "#1 SMP Wed Sep 16 06:02:02 EDT 2020", None,
        legacy=("etc/redhat-release",)),
    # Only usr/lib/os-release: no loader reads it, so the legacy file decides.
    "debian12-usr-lib": Host(
        "6.1.0-18-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)", DEBIAN_12,
        os_release_at="usr/lib/os-release", legacy=("etc/debian_version",)),
    "flatcar-usr-lib": Host(
        "5.15.119-flatcar", "#1 SMP Fri Jul 14 16:56:11 -00 2023", FLATCAR,
        os_release_at="usr/lib/os-release"),
    # etc/VERSION but no os-release (a minikube root seen without its etc/os-release).
    "minikube-bare": Host(
        "5.10.57", "#1 SMP Fri Jun 17 00:53:44 UTC 2022", None,
        minikube_version="v1.26.0-1655407986-14197\n"),
    # os-release files missing a key some loader needs.
    "amzn-no-version": Host(
        "6.1.55-75.123.amzn2023.x86_64", "#1 SMP PREEMPT_DYNAMIC Tue Sep 26 20:06:16 UTC 2023",
        AMAZON_LINUX_2023.replace('VERSION_ID="2023"\n', "")),
    "bottlerocket-no-variant": Host(
        "5.15.59", "#1 SMP Wed Nov 16 19:00:13 UTC 2022",
        BOTTLEROCKET.replace("VARIANT_ID=aws-k8s-1.24\n", "")),
    "bottlerocket-no-version": Host(
        "5.15.59", "#1 SMP Wed Nov 16 19:00:13 UTC 2022",
        BOTTLEROCKET.replace("VERSION_ID=1.11.1\n", "")),
    "talos-no-version": Host(
        "6.1.30-talos", "#1 SMP Fri Jun  2 16:23:41 UTC 2023",
        TALOS.replace("VERSION_ID=v1.4.5\n", "")),
    "cos-no-build-id": Host(
        "6.1.85+", "#1 SMP PREEMPT_DYNAMIC Sat Jun  1 14:36:15 UTC 2024",
        COS.replace("BUILD_ID=17412.226.28\n", "")),
    # VERSION_ID=v1.4.5-style and empty Flatcar versions.
    "flatcar-no-version": Host(
        "5.15.119-flatcar", "#1 SMP Fri Jul 14 16:56:11 -00 2023",
        FLATCAR.replace("VERSION_ID=3510.2.5\n", "")),
    "flatcar-odd-version": Host(
        "5.15.119-flatcar", "#1 SMP Fri Jul 14 16:56:11 -00 2023",
        FLATCAR.replace("VERSION_ID=3510.2.5", "VERSION_ID=3510.2")),
    "no-id": Host("5.10.0", "#1 SMP", 'NAME="Nameless"\n'),
    "no-id-debian": Host(
        "5.10.0-20-amd64", "#1 SMP Debian 5.10.158-2 (2022-12-13)", 'NAME="Nameless"\n',
        legacy=("etc/debian_version",)),
    "no-release-file": Host("5.10.0", "#1 SMP", None),
    "minikube-garbage": Host(
        "5.10.57", "#1 SMP Fri Jun 17 00:53:44 UTC 2022", BUILDROOT, minikube_version="garbage\n"),
}

# (host, falco versions, expected target, kernel release, kernel version)
Expectation = tuple[str, tuple[str, ...], str, str, str]
EXPECTED: tuple[Expectation, ...] = (
    # Debian: uname -r until 0.34; rebuilt from uname -v from 0.35.0, flavor kept from 0.35.1.
    ("debian10", ("0.31.1", "0.32.2", "0.34.1"), "debian", "4.19.0-24-amd64", "1"),
    ("debian10", ("0.35.0", "0.35.1", "0.36.2", "0.37.1", "0.44.0"),
     "debian", "4.19.282-1-amd64", "1"),
    ("debian10-cloud", ("0.34.1",), "debian", "4.19.0-24-cloud-amd64", "1"),
    ("debian10-cloud", ("0.35.0",), "debian", "4.19.282-1-amd64", "1"),
    ("debian10-cloud", ("0.35.1", "0.36.0", "0.38.2"), "debian", "4.19.282-1-cloud-amd64", "1"),
    ("debian11", ("0.32.2", "0.34.1"), "debian", "5.10.0-20-amd64", "1"),
    ("debian11", ("0.35.1", "0.36.2", "0.37.0", "0.43.0"), "debian", "5.10.158-2-amd64", "1"),
    ("debian11-cloud", ("0.32.2", "0.34.0"), "debian", "5.10.0-14-cloud-amd64", "1"),
    ("debian11-cloud", ("0.35.0",), "debian", "5.10.113-1-amd64", "1"),
    ("debian11-cloud", ("0.35.1", "0.36.0", "0.36.2", "0.37.1", "0.44.0"),
     "debian", "5.10.113-1-cloud-amd64", "1"),
    ("debian11-bpo", ("0.34.1",), "debian", "5.10.0-0.deb10.17-amd64", "1"),
    ("debian11-bpo", ("0.35.1", "0.39.0"), "debian", "5.10.136-1-amd64", "1"),
    ("debian12", ("0.34.1",), "debian", "6.1.0-18-amd64", "1"),
    ("debian12", ("0.36.2", "0.42.0"), "debian", "6.1.76-1-amd64", "1"),
    ("debian12-cloud", ("0.35.0",), "debian", "6.1.76-1-amd64", "1"),
    ("debian12-cloud", ("0.35.1", "0.36.2", "0.37.0"), "debian", "6.1.76-1-cloud-amd64", "1"),
    ("debian12-rt", ("0.35.0",), "debian", "6.1.76-1-amd64", "1"),
    ("debian12-rt", ("0.35.1", "0.36.0", "0.40.0"), "debian", "6.1.76-1-rt-amd64", "1"),
    ("debian12-arm64", ("0.34.1",), "debian", "6.1.0-18-arm64", "1"),
    ("debian12-arm64", ("0.35.1", "0.36.2", "0.41.0"), "debian", "6.1.76-1-arm64", "1"),
    ("old-debian", ("0.34.1",), "debian", "3.16.0-11-amd64", "1"),
    ("old-debian", ("0.36.2", "0.38.0"), "debian", "3.16.84-1-amd64", "1"),
    # Ubuntu: aws|generic until 0.32, flavor (with suffix) 0.33.0-0.35.0, flavor + HWE version
    # from 0.35.1.
    ("ubuntu-generic", ("0.31.1", "0.32.2", "0.34.1", "0.35.1", "0.36.2", "0.37.0", "0.44.0"),
     "ubuntu-generic", "5.15.0-46-generic", "49"),
    ("ubuntu1804", ("0.32.2", "0.38.2"), "ubuntu-generic", "4.15.0-167-generic", "175"),
    ("ubuntu-hwe", ("0.32.2", "0.34.1", "0.35.0"), "ubuntu-generic", "6.2.0-26-generic", "26"),
    ("ubuntu-hwe", ("0.35.1", "0.36.2", "0.37.0", "0.37.1", "0.44.0"),
     "ubuntu-generic", "6.2.0-26-generic", "26~22.04.1"),
    ("ubuntu-aws", ("0.32.2", "0.33.0", "0.36.2", "0.39.0"),
     "ubuntu-aws", "5.15.0-1009-aws", "11"),
    ("ubuntu-aws-hwe", ("0.32.2", "0.35.0"), "ubuntu-aws", "5.4.0-1103-aws", "111"),
    ("ubuntu-aws-hwe", ("0.35.1", "0.38.2"), "ubuntu-aws", "5.4.0-1103-aws", "111~18.04.1"),
    ("ubuntu-gke", ("0.31.1", "0.32.1", "0.32.2"), "ubuntu-generic", "5.15.0-1042-gke", "47"),
    ("ubuntu-gke", ("0.33.0", "0.35.1", "0.37.1"), "ubuntu-gke", "5.15.0-1042-gke", "47"),
    ("ubuntu-azure", ("0.32.2",), "ubuntu-generic", "5.15.0-1049-azure", "56"),
    ("ubuntu-azure", ("0.33.1", "0.40.0"), "ubuntu-azure", "5.15.0-1049-azure", "56"),
    ("ubuntu-gcp", ("0.32.2",), "ubuntu-generic", "5.4.0-1083-gcp", "91"),
    ("ubuntu-gcp", ("0.34.1", "0.35.0"), "ubuntu-gcp", "5.4.0-1083-gcp", "91"),
    ("ubuntu-gcp", ("0.35.1", "0.37.1"), "ubuntu-gcp", "5.4.0-1083-gcp", "91~18.04.1"),
    ("ubuntu-aws-suffix", ("0.32.2",), "ubuntu-aws", "5.0.0-1028-aws-5.0", "29"),
    ("ubuntu-aws-suffix", ("0.33.0", "0.35.0"), "ubuntu-aws-5.0", "5.0.0-1028-aws-5.0", "29"),
    ("ubuntu-aws-suffix", ("0.35.1", "0.38.0"), "ubuntu-aws", "5.0.0-1028-aws-5.0", "29"),
    # Amazon Linux: only "2" was known until 0.34.
    ("amazonlinux2", ("0.32.2", "0.35.1", "0.41.0"),
     "amazonlinux2", "4.14.355-280.672.amzn2.x86_64", "1"),
    ("amazonlinux2022", ("0.32.2", "0.34.1"),
     "amazonlinux", "5.15.73-45.135.amzn2022.x86_64", "1"),
    ("amazonlinux2022", ("0.35.0", "0.37.1"),
     "amazonlinux2022", "5.15.73-45.135.amzn2022.x86_64", "1"),
    ("amazonlinux2023", ("0.34.1",), "amazonlinux", "6.1.55-75.123.amzn2023.x86_64", "1"),
    ("amazonlinux2023", ("0.35.1", "0.36.2", "0.44.0"),
     "amazonlinux2023", "6.1.55-75.123.amzn2023.x86_64", "1"),
    ("amazonlinux1", ("0.32.2", "0.39.0"), "amazonlinux", "4.14.355-196.647.amzn1.x86_64", "1"),
    # The RPM family: ID lowercased, uname -r, #N.
    ("centos7", ("0.32.2", "0.36.2", "0.37.0", "0.44.0"), "centos", "3.10.0-1160.el7.x86_64", "1"),
    ("centos8", ("0.33.0", "0.38.2"), "centos", "4.18.0-348.7.1.el8_5.x86_64", "1"),
    ("rhel8", ("0.32.2", "0.36.2", "0.37.1"), "rhel", "4.18.0-372.26.1.el8_6.x86_64", "1"),
    ("fedora39", ("0.35.1", "0.39.0"), "fedora", "6.5.6-300.fc39.x86_64", "1"),
    ("old-centos", ("0.32.2", "0.36.2"), "centos", "2.6.32-754.35.1.el6.x86_64", "1"),
    # Only etc/redhat-release: the bash loaders know it from 0.34.0, falcoctl always.
    ("old-rhel", ("0.34.0", "0.36.2", "0.37.0", "0.44.0"),
     "rhel", "2.6.32-754.35.1.el6.x86_64", "1"),
    ("debian12-usr-lib", ("0.34.1",), "debian", "6.1.0-18-amd64", "1"),
    ("debian12-usr-lib", ("0.36.2", "0.38.0", "0.44.0"), "debian", "6.1.76-1-amd64", "1"),
    ("no-id-debian", ("0.38.0", "0.44.0"), "debian", "5.10.158-2-amd64", "1"),
    ("opensuse-leap", ("0.36.2", "0.40.0"),
     "opensuse-leap", "5.14.21-150500.55.39-default", "1"),
    ("arch", ("0.36.2", "0.37.0", "0.37.1"), "arch", "6.6.9-arch1-1", "1"),
    # sed and falcoctl >= 0.7.2 keep the digits; falcoctl 0.7.0 (Falco 0.37.0) the first word.
    ("photon", ("0.36.2",), "photon", "4.19.290-1.ph3", "1"),
    ("photon", ("0.37.0",), "photon", "4.19.290-1.ph3", "1-photon"),
    ("photon", ("0.37.1", "0.44.0"), "photon", "4.19.290-1.ph3", "1"),
    # Flatcar: the OS version stands for the kernel release, in every version.
    ("flatcar", ("0.31.1", "0.32.0"), "flatcar", "5.15.119-flatcar", "1"),
    ("flatcar", ("0.32.1", "0.32.2", "0.36.2", "0.37.0", "0.44.0"), "flatcar", "3510.2.5", "1"),
    ("flatcar-odd-version", ("0.36.2",), "flatcar", "3510.2", "1"),
    # minikube: from 0.33 etc/VERSION makes the target and its version the kernel version;
    # before, etc/VERSION counted only without os-release, so os-release named it (buildroot).
    ("minikube", ("0.31.1", "0.32.2"), "buildroot", "5.10.57", "1"),
    ("minikube", ("0.33.0", "0.36.2", "0.37.1"), "minikube", "5.10.57", "1_1.26.0"),
    # Without os-release: a bare etc/VERSION names minikube up to 0.32 (no version rule
    # yet), and again in falcoctl; 0.33-0.36 stop (see UNNAMED).
    ("minikube-bare", ("0.31.1", "0.32.2"), "minikube", "5.10.57", "1"),
    ("minikube-bare", ("0.37.0", "0.44.0"), "minikube", "5.10.57", "1_1.26.0"),
    # Bottlerocket: release + variant as kernel version from 0.34.
    ("bottlerocket", ("0.32.2", "0.33.1"), "bottlerocket", "5.15.59", "1"),
    ("bottlerocket", ("0.34.0", "0.36.2", "0.38.0"), "bottlerocket", "5.15.59", "1_1.11.1-aws"),
    # The bash loader fills in what os-release lacks with nothing; falcoctl refuses.
    ("bottlerocket-no-variant", ("0.34.0", "0.36.2"), "bottlerocket", "5.15.59", "1_1.11.1-"),
    ("bottlerocket-no-version", ("0.36.2",), "bottlerocket", "5.15.59", "1_-aws"),
    ("amzn-no-version", ("0.36.2",), "amazonlinux", "6.1.55-75.123.amzn2023.x86_64", "1"),
    ("talos-no-version", ("0.36.2",), "talos", "6.1.30-talos", "1_"),
    ("cos-no-build-id", ("0.36.2",), "cos", "6.1.85+", "1"),
    # Talos: its version as kernel version from 0.35.
    ("talos", ("0.33.0", "0.34.1"), "talos", "6.1.30-talos", "1"),
    ("talos", ("0.35.0", "0.37.1", "0.44.0"), "talos", "6.1.30-talos", "1_v1.4.5"),
    # COS: plain names; falcoctl 0.37-0.38 could not parse "x.y.z+" (see UNNAMED).
    ("cos", ("0.32.2", "0.36.2", "0.39.0", "0.44.0"), "cos", "5.15.133+", "1"),
)

_NO_LEGACY = "no etc/centos-release, etc/debian_version, etc/redhat-release or etc/VERSION"
_UNDETERMINED = "the falcoctl of Falco {falco} leaves the distro undetermined and downloads nothing"
_BASH_NO_FILE = "Falco {falco}'s loader cannot name the distro and downloads nothing"

# (host, falco versions, the reason the loader names nothing; {falco} is the version)
Refusal = tuple[str, tuple[str, ...], str]
UNNAMED: tuple[Refusal, ...] = (
    # The bash loaders before 0.34 know no etc/redhat-release.
    ("old-rhel", ("0.31.1", "0.32.2"),
     "no etc/os-release, etc/debian_version, etc/centos-release or etc/VERSION: "
     + _BASH_NO_FILE),
    ("old-rhel", ("0.33.0", "0.33.1"),
     "no etc/os-release, etc/debian_version, etc/centos-release: " + _BASH_NO_FILE),
    # falcoctl tries its release-file checks in random order.
    ("old-centos", ("0.37.1", "0.44.0"),
     "there is no etc/os-release, and falcoctl (Falco {falco}) picks one of centos, rhel at "
     "random from the release files present"),
    # No loader reads usr/lib/os-release.
    ("flatcar-usr-lib", ("0.32.2",),
     "no etc/os-release, etc/debian_version, etc/centos-release or etc/VERSION: "
     + _BASH_NO_FILE),
    ("flatcar-usr-lib", ("0.36.2",),
     "no etc/os-release, etc/debian_version, etc/centos-release or etc/redhat-release: "
     + _BASH_NO_FILE),
    ("flatcar-usr-lib", ("0.37.0", "0.44.0"),
     f"there is no etc/os-release and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("no-release-file", ("0.38.2",),
     f"there is no etc/os-release and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("minikube-bare", ("0.33.0", "0.36.2"),
     "no etc/os-release, etc/debian_version, etc/centos-release"
     + "{rhel}: " + _BASH_NO_FILE),
    # falcoctl's distros that need an os-release key.
    ("amzn-no-version", ("0.37.1", "0.44.0"),
     f"etc/os-release has ID=amzn but no VERSION_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("bottlerocket-no-variant", ("0.37.0", "0.44.0"),
     f"etc/os-release has ID=bottlerocket but no VARIANT_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("bottlerocket-no-version", ("0.38.0",),
     f"etc/os-release has ID=bottlerocket but no VERSION_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("talos-no-version", ("0.37.1", "0.44.0"),
     f"etc/os-release has ID=talos but no VERSION_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("cos-no-build-id", ("0.39.0", "0.44.0"),
     f"etc/os-release has ID=cos but no BUILD_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("flatcar-no-version", ("0.37.0", "0.44.0"),
     f"etc/os-release has ID=flatcar but no VERSION_ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    ("flatcar-no-version", ("0.32.1", "0.36.2"),
     "Flatcar's os-release has no VERSION_ID: Falco {falco}'s loader would request a driver "
     "with an empty kernel release"),
    ("flatcar-odd-version", ("0.37.0", "0.44.0"),
     "Flatcar's VERSION_ID '3510.2' is not a semver X.Y.Z: the falcoctl of Falco {falco} "
     "panics parsing it and downloads nothing"),
    # os-release without ID.
    ("no-id", ("0.32.2", "0.36.2"),
     "etc/os-release has no ID: Falco {falco}'s loader would request a driver with an empty "
     "target"),
    ("no-id", ("0.37.0", "0.37.1"),
     "etc/os-release has no ID: the falcoctl of Falco {falco} finds no distro and crashes "
     "before any download"),
    ("no-id", ("0.38.0", "0.44.0"),
     f"etc/os-release has no ID and {_NO_LEGACY}: {_UNDETERMINED}"),
    # driverkit before v0.20.3 cannot parse "X.Y.Z+".
    ("cos", ("0.37.0", "0.38.2"),
     "the falcoctl of Falco {falco} cannot parse the kernel release '5.15.133+' and would "
     "request a driver with an empty kernel release (falcosecurity/falco#3278)"),
    ("minikube-garbage", ("0.33.0", "0.36.2"),
     "etc/VERSION marks a minikube host but holds no version like 1.26.0: Falco {falco}'s "
     "loader stops there"),
)


def unnamed_reason(template: str, falco: str) -> str:
    """The reason text of an UNNAMED entry for one Falco version."""
    rhel = " or etc/redhat-release" if tuple(map(int, falco.split("."))) >= (0, 34, 0) else ""
    return template.format(falco=falco, rhel=rhel)
