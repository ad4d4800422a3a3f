"""The reference DisentTalk denoiser (pure PyTorch modules calling `disenttalk_fast.ops`)."""

from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.model.audio_encoder import AudioEncoder
from disenttalk_fast.model.blocks import DenoiserBlock
from disenttalk_fast.model.denoiser import DisentTalkDenoiser
from disenttalk_fast.model.embeddings import TimestepEmbedding, sinusoidal_embedding

__all__ = ["AudioCache", "AudioEncoder", "DenoiserBlock", "DisentTalkDenoiser",
           "TimestepEmbedding", "sinusoidal_embedding"]
