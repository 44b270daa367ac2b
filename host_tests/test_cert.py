"""firmware/cert.py: a CA file in PEM or DER becomes the DER the board's ssl module takes."""

import base64
import ssl

import pytest
import trustme

from firmware.cert import der


@pytest.fixture(scope="module")
def ca_der() -> bytes:
    return ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode())


def pem(data: bytes, newline: bytes = b"\n") -> bytes:
    body = base64.encodebytes(data).replace(b"\n", newline)
    return b"-----BEGIN CERTIFICATE-----" + newline + body + b"-----END CERTIFICATE-----" + newline


def test_der_is_taken_as_it_is(ca_der: bytes) -> None:
    assert der(ca_der) == ca_der


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_pem_becomes_the_same_der(ca_der: bytes, newline: bytes) -> None:
    assert der(pem(ca_der, newline)) == ca_der


def test_the_first_certificate_of_a_pem_bundle_is_used(ca_der: bytes) -> None:
    other = ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode())
    assert der(b"# bundle\n" + pem(ca_der) + pem(other)) == ca_der


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a certificate"),
        (b"hello, this is a text file\n", "not a certificate"),
        (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "not a certificate"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB", "without its END line"),
        (b"-----BEGIN CERTIFICATE-----\nMIIBx\n-----END CERTIFICATE-----\n", "base64 is broken"),
    ],
)
def test_anything_else_is_refused_by_what_it_is(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        der(data)


def test_a_truncated_der_certificate_is_refused(ca_der: bytes) -> None:
    with pytest.raises(ValueError, match="not a certificate"):
        der(ca_der[:-1])
