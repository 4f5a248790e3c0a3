"""The in-memory Omniglot-style dataset: images, character labels, alphabets and drawers.

A folder of the user's classes (:mod:`.folder`) is a Dataset too: its groups are alphabets, its
classes characters, and an image's position in its class (1, 2, ...) its drawer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import OneshotError

__all__ = ["DataError", "Dataset"]


class DataError(OneshotError):
    """An archive, image, cache or download does not meet the expected structure or content."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images of characters, each tagged with its character, alphabet and drawer.

    images: uint8 (N, H, W), ink = 1, background = 0.
    labels: int64 (N,), index into ``characters``.
    drawers: int64 (N,), the drawer (1..20 for Omniglot).
    characters: names "Alphabet/characterNN", one per class.
    char_alphabet: int64 (C,), index into ``alphabets`` of each character.
    char_ids: int64 (C,), Omniglot's global character ID (0 where unknown).
    name, digest: where the data came from (split name, content digest of the archive).
    digest_verified: True when ``digest`` was recomputed from these pixels and names in this
        process (and matched the pinned one); False when it was trusted (copied, not recomputed).
    """

    images: np.ndarray
    labels: np.ndarray
    drawers: np.ndarray
    characters: tuple[str, ...]
    char_alphabet: np.ndarray
    alphabets: tuple[str, ...]
    char_ids: np.ndarray
    name: str
    digest: str
    digest_verified: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        h, w = self.images.shape[1:] if self.images.ndim == 3 else (0, 0)
        return (f"Dataset({self.name!r}: {len(self)} images {h}x{w}, {len(self.characters)} "
                f"characters, {len(self.alphabets)} alphabets, digest {self.digest[:12]})")

    @property
    def image_alphabet(self) -> np.ndarray:
        """int64 (N,): alphabet index of each image."""
        return self.char_alphabet[self.labels]

    def counts(self) -> dict[str, int]:
        return {"alphabets": len(self.alphabets), "characters": len(self.characters),
                "images": len(self)}

    def select(
        self,
        alphabets: Iterable[str] | None = None,
        drawers: Iterable[int] | None = None,
        name: str | None = None,
        characters: Iterable[str] | None = None,
    ) -> "Dataset":
        """A new Dataset keeping only the given alphabets, drawers and/or characters.

        Characters and alphabets are renumbered compactly in their original (sorted) order;
        an alphabet left with no character is dropped. Raises ValueError for an alphabet,
        drawer or character that the dataset does not have.
        """
        keep_alpha = np.ones(len(self.alphabets), dtype=bool)
        if alphabets is not None:
            keep_alpha = self._isin(alphabets, self.alphabets, "alphabet")
        mask = keep_alpha[self.image_alphabet]
        if characters is not None:
            keep = self._isin(characters, self.characters, "character")
            mask &= keep[self.labels]
            keep_alpha &= np.bincount(self.char_alphabet[keep],
                                      minlength=len(self.alphabets)) > 0
        if drawers is not None:
            dr = np.asarray(list(drawers), dtype=np.int64)
            missing = sorted(set(dr.tolist()) - set(np.unique(self.drawers).tolist()))
            if missing:
                raise DataError(f"dataset {self.name!r} has no drawer(s) {missing} (in a "
                                "folder, a drawer is an image's place in its class by file "
                                "name; --set drawers=null keeps every image)")
            mask &= np.isin(self.drawers, dr)
        alpha_idx = np.flatnonzero(keep_alpha)
        keep_char = np.zeros(len(self.characters), dtype=bool)
        keep_char[np.unique(self.labels[mask])] = True
        char_idx = np.flatnonzero(keep_char)
        char_map = np.full(len(self.characters), -1, dtype=np.int64)
        char_map[char_idx] = np.arange(len(char_idx))
        alpha_map = np.full(len(self.alphabets), -1, dtype=np.int64)
        alpha_map[alpha_idx] = np.arange(len(alpha_idx))
        return Dataset(
            images=self.images[mask],
            labels=char_map[self.labels[mask]],
            drawers=self.drawers[mask],
            characters=tuple(self.characters[i] for i in char_idx),
            char_alphabet=alpha_map[self.char_alphabet[char_idx]],
            alphabets=tuple(self.alphabets[i] for i in alpha_idx),
            char_ids=self.char_ids[char_idx],
            name=name or self.name,
            digest=self.digest,
            digest_verified=self.digest_verified,
        )

    def _isin(self, wanted: Iterable[str], have: tuple[str, ...], what: str) -> np.ndarray:
        """bool (len(have),): which of ``have`` are ``wanted``; ValueError naming the others."""
        wanted = list(wanted)
        missing = sorted(set(wanted) - set(have))
        if missing:
            raise ValueError(f"dataset {self.name!r} has no {what}(s) {missing[:5]}")
        return np.isin(np.array(have, dtype=object), wanted)

    def image_name(self, i: int) -> str:
        """'Alphabet/characterNN/ID_drawer.png' of image ``i``."""
        c = int(self.labels[i])
        return f"{self.characters[c]}/{int(self.char_ids[c]):04d}_{int(self.drawers[i]):02d}.png"

    def with_rotations(self, images: bool = True) -> "Dataset":
        """Add each character rotated by 90, 180 and 270 degrees as three new characters
        (named "<character>@rot90" etc., same alphabet), a common way to enlarge training data.

        ``images=False`` gives the labels only: ``images`` is then a read-only view of zeros of
        the right shape (no memory), for samplers, when the caller rotates small model inputs
        itself (rotation by 90 degrees commutes with resizing a square image)."""
        return self._with_copies([lambda x, k=k: np.rot90(x, k, axes=(1, 2)) for k in (1, 2, 3)],
                                 ["@rot90", "@rot180", "@rot270"], "rotations", images)

    def with_flips(self, images: bool = True) -> "Dataset":
        """Add each character mirrored left to right as a new character ("<character>@flip",
        same alphabet); ``images`` as for :meth:`with_rotations`. With both, flip first:
        ``with_flips().with_rotations()`` gives eight orientations of each character."""
        return self._with_copies([lambda x: x[:, :, ::-1]], ["@flip"], "flips", images)

    def _with_copies(self, transforms, suffixes, what: str, images: bool) -> "Dataset":
        """All characters, then for each transform all characters transformed, as new classes
        (positions ``k * len(self)`` onwards hold copy k of image i at ``i``)."""
        C, k = len(self.characters), len(transforms) + 1
        if images:
            copied = np.ascontiguousarray(np.concatenate(
                [self.images] + [t(self.images) for t in transforms]))
        else:
            copied = np.broadcast_to(np.zeros((1, *self.images.shape[1:]), self.images.dtype),
                                     (k * len(self), *self.images.shape[1:]))
        return Dataset(
            images=copied,
            labels=np.concatenate([self.labels + j * C for j in range(k)]),
            drawers=np.tile(self.drawers, k),
            characters=self.characters + tuple(f"{c}{s}" for s in suffixes
                                               for c in self.characters),
            char_alphabet=np.tile(self.char_alphabet, k),
            alphabets=self.alphabets,
            char_ids=np.tile(self.char_ids, k),
            name=f"{self.name}+{what}",
            digest=self.digest,
            digest_verified=self.digest_verified,
        )
