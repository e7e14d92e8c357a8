"""Test helpers shared by several test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(path: Path, frames: np.ndarray, syntax=None, bits=8, **extra):
    """A multi-frame ultrasound DICOM: uncompressed, or ``syntax`` with garbage encapsulated frames."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "US"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = frames.shape[1], frames.shape[2], frames.shape[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        (8, 8, 7, 0) if bits == 8 else (16, bits, bits - 1, 0)
    )
    ds.FrameTime = 40.0
    for k, v in extra.items():
        setattr(ds, k, v)
    if syntax is None:
        ds.PixelData = frames.tobytes()
    else:
        ds.PixelData = encapsulate([b"\xff\xd8garbage-frame" * 4 for _ in frames])
        ds["PixelData"].VR = "OB"
    ds.save_as(str(path), enforce_file_format=True)
