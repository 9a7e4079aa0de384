"""resumable.js (https://github.com/23/resumable.js): parameters named resumable*."""

from ..models import Upload
from .chunks import ChunkProtocol


class ResumableJS(ChunkProtocol):
    prefix = "resumable"
    protocol = Upload.Protocol.RESUMABLE
