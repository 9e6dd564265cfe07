"""The Datastar client shipped in ``realtime/static/``: exactly the labelled build, collectable."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import override_settings

import realtime
from realtime.conf import BUNDLED_DATASTAR, BUNDLED_DATASTAR_INTEGRITY

STATIC = Path(realtime.__file__).parent / "static"
BUNDLE = STATIC / BUNDLED_DATASTAR
#: Datastar v1.0.1 with two StarHTML patches, byte for byte as the starhtml 0.7.0 wheel ships it.
SHA256 = "31c8c9efb895beadeba5f73407c3ca60201dee321c5dea56c182817b475bde9f"


def test_the_bundle_is_the_labelled_build() -> None:
    source = BUNDLE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == SHA256
    first_line = source.split(b"\n", 1)[0].decode()
    assert first_line.startswith("// Datastar v1.0.1 (StarHTML patched:")
    sri = "sha384-" + base64.b64encode(hashlib.sha384(source).digest()).decode()
    assert sri == BUNDLED_DATASTAR_INTEGRITY


def test_the_bundle_is_labelled_with_version_patches_licenses_and_hash() -> None:
    folder = BUNDLE.parent
    readme = (folder / "README.md").read_text()
    for fact in ("v1.0.1", "two StarHTML patches", "starhtml==0.7.0", SHA256, "MIT", "Apache-2.0"):
        assert fact in readme, fact
    assert "Permission is hereby granted" in (folder / "LICENSE-datastar.md").read_text()
    assert "Apache License" in (folder / "LICENSE-starhtml.txt").read_text()
    assert (folder / "NOTICE-starhtml.txt").exists()


def test_the_static_finders_serve_it() -> None:
    assert Path(str(finders.find(BUNDLED_DATASTAR))) == BUNDLE


def test_collectstatic_with_the_manifest_storage_accepts_it(tmp_path: Path) -> None:
    # The bundle names a source map on its last line; ManifestStaticFilesStorage refuses a
    # missing one, so an (empty) map ships beside it.
    storages = {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    assert list(tmp_path.glob("realtime/datastar/datastar.*.js"))
