"""observe.stored: what a reading of the store means to a plan, decided over plain values
(``model.stored``), no file involved. The same rules over real files are in
tests/edges/store/test_local*.py."""

from __future__ import annotations

from reconciler.model import modsig
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.stored import OtherFile, StoreReading, WantedFile
from reconciler.model.versions import DriverIdentity
from reconciler.observe import stored
from reconciler.observe.fakes import stored_artifact

RELEASE = "6.1.0-1-cloud-amd64"


def kmod(version: str = "9.1.0+driver", release: str = RELEASE) -> ArtifactKey:
    return ArtifactKey(version, "x86_64", "debian", release, "1", DriverKind.KMOD)


GOOD = kmod(release="6.1.0-2-cloud-amd64")
OLD = DriverIdentity.parse("8.0.3", "3.5.0")  # what 9.1.0+driver refuses (it needs 8.0.4/4.1.0)
FITS = DriverIdentity.parse("8.0.4", "4.1.0")
MOK = modsig.Signer("CN=Our MOK,O=Example", "01:02")
DEBIAN = modsig.Signer("CN=Debian Secure Boot Signer,O=Debian", "AA:BB")


def signed_by(signer: modsig.Signer) -> modsig.ModuleSignature:
    return modsig.ModuleSignature(signer, "sha256", "", 100, b"pkcs7")


def test_a_verifying_wanted_artifact_is_present_and_nothing_else() -> None:
    reading = StoreReading((WantedFile(GOOD, stored_artifact(GOOD, identity=FITS)),),
                           stored=frozenset({GOOD}))
    held = stored.classify(reading)
    assert (held.present, held.corrupt, held.misfits, held.unsigned, held.unsafe) == (
        {GOOD}, frozenset(), (), (), ())
    assert held.stored == {GOOD}


def test_a_wanted_file_that_does_not_verify_is_corrupt_without_a_reason_of_its_own() -> None:
    held = stored.classify(StoreReading((WantedFile(GOOD, None),), stored=frozenset({GOOD})))
    assert (held.present, held.corrupt, held.misfits, held.unsigned) == (
        frozenset(), {GOOD}, (), ())


def test_a_wanted_key_with_nothing_at_its_place_is_simply_missing() -> None:
    """The reading lists no missing artifact: it is neither present nor corrupt."""
    held = stored.classify(StoreReading())
    assert (held.present, held.corrupt) == (frozenset(), frozenset())


def test_an_identity_its_driver_version_refuses_makes_it_corrupt_with_why() -> None:
    wrong = kmod()
    held = stored.classify(StoreReading((WantedFile(wrong, stored_artifact(wrong, identity=OLD)),)))
    assert held.corrupt == {wrong} and held.present == frozenset()
    ((key, why),) = held.misfits
    assert key == wrong
    assert why == ("driver version 9.1.0+driver requires API 8.0.4 / schema 4.1.0 (the same "
                   "majors, minor.patch at least these), but the driver has API 8.0.3 / "
                   "schema 3.5.0")


def test_a_file_that_carries_no_identity_is_judged_by_its_checksum_alone() -> None:
    held = stored.classify(StoreReading((WantedFile(GOOD, stored_artifact(GOOD)),)))
    assert held.present == {GOOD}


def test_a_module_wanted_signed_is_present_only_when_signed_by_that_signer() -> None:
    unsigned = kmod(release="6.1.0-3-cloud-amd64")
    other = kmod(release="6.1.0-4-cloud-amd64")
    reading = StoreReading((
        WantedFile(GOOD, stored_artifact(GOOD, signature=signed_by(MOK))),
        WantedFile(unsigned, stored_artifact(unsigned)),
        WantedFile(other, stored_artifact(other, signature=signed_by(DEBIAN))),
    ))
    held = stored.classify(reading, {GOOD: MOK, unsigned: MOK, other: MOK})
    assert held.present == {GOOD}
    assert held.corrupt == {unsigned, other}
    assert dict(held.unsigned) == {
        unsigned: f"signed by {MOK} wanted, the store has an unsigned build",
        other: f"signed by {MOK} wanted, the store has a build signed by {DEBIAN}",
    }
    # Where no signer is wanted, any build will do (a signed module loads everywhere).
    assert stored.classify(reading).present == {GOOD, unsigned, other}


def test_an_unreadable_signature_or_certificate_is_the_reason_given() -> None:
    garbled = stored_artifact(GOOD, signature="the PKCS#7 blob is truncated")
    assert stored.signing_problem(garbled, MOK) == (
        f"signed by {MOK} wanted, the store's build has a signature that cannot be read "
        "(the PKCS#7 blob is truncated)")
    cannot = "cannot read the signing certificate /c.pem: No such file or directory"
    assert stored.signing_problem(stored_artifact(GOOD, signature=signed_by(MOK)),
                                  cannot) == cannot


def test_a_probe_is_never_held_to_a_signer() -> None:
    probe = GOOD._replace(kind=DriverKind.EBPF)
    assert stored.signing_problem(stored_artifact(probe), MOK) is None


def test_a_wanted_artifact_behind_a_symlinked_folder_is_unsafe_not_corrupt() -> None:
    held = stored.classify(StoreReading((WantedFile(GOOD, unsafe_folder="9.1.0+driver"),)))
    assert held.unsafe == ((GOOD, "9.1.0+driver"),)
    assert (held.present, held.corrupt) == (frozenset(), frozenset())


def test_an_unwanted_file_is_corrupt_without_a_checksum_or_with_a_refused_identity() -> None:
    plain, unsummed, refused = kmod(release="a"), kmod(release="b"), kmod(release="c")
    reading = StoreReading(others=(OtherFile(plain, True, FITS), OtherFile(unsummed, False),
                                   OtherFile(refused, True, OLD)),
                           stored=frozenset({plain, unsummed, refused}))
    held = stored.classify(reading)
    assert held.corrupt == {unsummed, refused}
    assert held.misfits == ()  # reasons are for what is wanted: the rest is only deleted
    assert held.stored == {plain, unsummed, refused}


def test_usable_is_present_by_the_same_rules() -> None:
    """What a build need not redo is what the plan counts as present."""
    wrong = kmod()
    assert stored.usable(None) is None
    assert stored.usable(stored_artifact(wrong, identity=OLD)) is None
    fine = stored_artifact(GOOD, identity=FITS, signature=signed_by(MOK))
    assert stored.usable(fine) is fine
    assert stored.usable(fine, MOK) is fine
    assert stored.usable(fine, DEBIAN) is None
