"""
A SHA-256 whose state can be saved between requests and taken up again.

hashlib's objects cannot be pickled or exported, yet the bytes of one file
arrive over many requests, on many processes and hosts: to hash them as they
arrive, the hash of the bytes so far must live in the database between one
chunk and the next. OpenSSL, which hashlib itself runs on, keeps that state in
a plain public structure (SHA256_CTX in openssl/sha.h: eight 32-bit words, the
bit count, the unhashed tail of the last 64-byte block), so this module calls
OpenSSL's SHA256_Init/Update/Final through ctypes and saves that structure as
it is. The same assembler does the hashing, at hashlib's speed, with the GIL
let go as hashlib does.

A saved state is checked before use: its bit count must be the byte count it
was saved with, and its layout must be this machine's (a tag), so a state from
another architecture or a different build is refused and the bytes are hashed
again from staging, never continued into a wrong digest. Where OpenSSL's
library cannot be loaded, available() is False and the engine hashes each
file whole when it finishes, as it did before.
"""

import ctypes
import ctypes.util
import functools
import hashlib
import struct
import sys

# typedef struct { SHA_LONG h[8]; SHA_LONG Nl, Nh; SHA_LONG data[16];
#                  unsigned int num, md_len; } SHA256_CTX;
_CTX_SIZE = 112
_Context = ctypes.c_char * _CTX_SIZE
# Saved states start with this: the layout, and the byte order of its words.
_TAG = b"openssl-sha256-ctx:" + sys.byteorder[0].encode() + b":"


class StateRefused(ValueError):
    """A saved state that is not one this machine can continue."""


class ResumableSHA256:
    """hashlib.sha256's update/digest/hexdigest, plus state() to save it."""

    name = "sha256"

    def __init__(self, _context=None, _length=0):
        lib = _library()
        if lib is None:
            raise RuntimeError("OpenSSL's libcrypto could not be loaded")
        self._lib = lib
        self._context = _context if _context is not None else _fresh(lib)
        self.length = _length  # bytes hashed so far

    @classmethod
    def resume(cls, state, length):
        """The hash of `length` bytes whose state() was `state` (None: no bytes yet)."""
        if not state:
            if length:
                raise StateRefused(f"no state saved for {length} bytes")
            return cls()
        state = bytes(state)
        if not state.startswith(_TAG) or len(state) != len(_TAG) + _CTX_SIZE:
            raise StateRefused("the state was saved by another kind of machine")
        context = _Context.from_buffer_copy(state[len(_TAG) :])
        low, high = struct.unpack_from(f"{_order()}II", context, 32)
        if (high << 32 | low) != length * 8:
            raise StateRefused(f"the state is of {(high << 32 | low) // 8} bytes, not {length}")
        return cls(context, length)

    def update(self, data):
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return
        # bytes pass as they are; anything else (a bytearray, a memoryview of one)
        # is read in place through a ctypes array over its buffer.
        if isinstance(data, bytes):
            self._lib.SHA256_Update(self._context, data, len(data))
        elif view.readonly:
            self._lib.SHA256_Update(self._context, bytes(view), view.nbytes)
        else:
            buffer = (ctypes.c_char * view.nbytes).from_buffer(view)
            self._lib.SHA256_Update(self._context, buffer, view.nbytes)
        self.length += view.nbytes

    def state(self):
        """The bytes to save: resume(state, self.length) continues from here."""
        return _TAG + bytes(self._context)

    def digest(self):
        out = ctypes.create_string_buffer(32)
        # Final ends the structure it is given: a copy, so this hash can go on.
        self._lib.SHA256_Final(out, _Context.from_buffer_copy(self._context))
        return out.raw

    def hexdigest(self):
        return self.digest().hex()


def available():
    return _library() is not None


def _fresh(lib):
    context = _Context()
    lib.SHA256_Init(context)
    return context


def _order():
    return "<" if sys.byteorder == "little" else ">"


@functools.cache
def _library():
    """libcrypto with the three functions, or None; checked against hashlib once."""
    names = [ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        init.argtypes = [ctypes.c_void_p]
        update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        if _agrees_with_hashlib(lib):
            return lib
    return None


def _agrees_with_hashlib(lib):
    """A state saved mid-block and taken up again gives hashlib's digest."""
    sample = bytes(range(256)) * 5
    context = _fresh(lib)
    lib.SHA256_Update(context, sample[:100], 100)
    again = _Context.from_buffer_copy(bytes(context))
    lib.SHA256_Update(again, sample[100:], len(sample) - 100)
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Final(out, again)
    low = struct.unpack_from(f"{_order()}I", context, 32)[0]
    return out.raw == hashlib.sha256(sample).digest() and low == 800
