"""flow.js (https://github.com/flowjs/flow.js): parameters named flow*."""

from ..models import Upload
from .chunks import ChunkProtocol


class FlowJS(ChunkProtocol):
    prefix = "flow"
    protocol = Upload.Protocol.FLOW
