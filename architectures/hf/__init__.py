"""The `transformers` audio encoders the project runs, by family: what their input, a layer
and a frame are, their networks loaded from the local disk or rebuilt from a configuration,
and their states.

| family | model types | input | a layer | a frame | window |
|---|---|---|---|---|---|
| `speech` | wav2vec2, HuBERT, WavLM, data2vec-audio (any with `conv_stride`) | the waveform, normalised | a transformer layer's output (0: its input) | 20 ms | none |
| `whisper` | whisper (the encoder) | 80-band log-mel, 10 ms | an encoder layer's output (0: its input) | 20 ms | 30 s, cut to the segment |
| `ast` | audio-spectrogram-transformer | 128-band Kaldi fbank, 10 ms | a layer's patch tokens, averaged over frequency | 100 ms (a patch column) | 1024 frames (10.24 s), padded |
| `clap` | clap (its audio tower, HTSAT) | 64-band log-mel at 48 kHz | a Swin stage, the pooled output or the projection, averaged over patches | the window | 10 s, repeat-padded |

Whisper's encoder has positions for 30 s only (1500 frames). A segment shorter than that is
read as it is: its log-mel frames go through the convolutions and only the first
`frames` positions are added (`WhisperFamily.states`), so a 5 s segment costs a sixth of a
30 s window (and less in attention). Padding it to 30 s and keeping the frames that hold
audio gives other states (the padding takes part in attention): measured in
docs/results.md ("Whisper's 30 s window").

A network is identified by its family and two dictionaries, its `config.json` and its
feature extractor's `preprocessor_config.json` (`Family(config, preprocessor)`): everything a
model saved with an encoder inside needs to rebuild it (`build`) without running anything
from the file. Nothing is ever downloaded: a model is a folder written by `save_pretrained`
or a hub id already in the local cache. torch and transformers are imported where used.
"""

from architectures.hf.base import (
    FAMILIES,
    HF_PREFIX,
    WEIGHT_SUFFIXES,
    Family,
    Spectrogram,
    UnknownEncoderError,
    dft_kernel,
    model_name,
    names_model,
    register_family,
)
from architectures.hf.clap import ClapFamily
from architectures.hf.local import (
    LocalModel,
    family_class,
    family_of,
    is_path,
    model_folder,
    read_model,
)
from architectures.hf.spectrogram_transformer import AstFamily
from architectures.hf.speech import SpeechFamily
from architectures.hf.whisper import WhisperFamily

__all__ = ["FAMILIES", "HF_PREFIX", "WEIGHT_SUFFIXES", "AstFamily", "ClapFamily",
           "Family", "LocalModel", "SpeechFamily", "Spectrogram", "UnknownEncoderError",
           "WhisperFamily", "dft_kernel", "family_class", "family_of", "is_path", "model_folder",
           "model_name", "names_model", "read_model", "register_family"]
