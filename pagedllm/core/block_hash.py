"""Content hashes of full blocks, chained so that a block's hash names its whole prefix."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

BlockHash = bytes


def hash_block(
    parent: BlockHash | None, token_ids: Sequence[int], cache_salt: str | None = None
) -> BlockHash:
    """sha256 over the parent block's hash, this block's token ids and (first block only) the salt.

    NOTE: a collision would silently serve another prompt's K/V, so the hash is cryptographic rather
    than Python's ``hash``; 16 bytes of it keep the tables small.
    """
    digest = hashlib.sha256()
    if parent is None:
        if cache_salt is not None:
            digest.update(b"salt:" + cache_salt.encode())
    else:
        digest.update(parent)
    digest.update(array("q", token_ids).tobytes())
    return digest.digest()[:16]


def hash_full_blocks(
    token_ids: Sequence[int],
    block_size: int,
    known: list[BlockHash],
    cache_salt: str | None = None,
    num_tokens: int | None = None,
) -> list[BlockHash]:
    """Extend ``known`` (the hashes of the first blocks) to every full block of ``token_ids[:num_tokens]``."""
    # NOTE: never past the tokens there are: a hash of a partial block would be kept as a full one's.
    limit = len(token_ids) if num_tokens is None else min(num_tokens, len(token_ids))
    for index in range(len(known), limit // block_size):
        parent = known[-1] if known else None
        known.append(hash_block(parent, token_ids[index * block_size : (index + 1) * block_size], cache_salt))
    return known
