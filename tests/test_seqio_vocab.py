"""Our vocabularies inside SeqIO: the same ids through SeqIO's Python and TensorFlow paths."""

import pytest

seqio = pytest.importorskip("seqio")
tf = pytest.importorskip("tensorflow")

from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=wrong-import-position
from instruct_pt.data.seqio_vocab import SeqIOVocabulary  # pylint: disable=wrong-import-position
from instruct_pt.model import readers  # pylint: disable=wrong-import-position

SAMPLE = ["Plain English text.", "  leading spaces\tand tabs\n\nnew lines  ",
          "accents: café, naïve; CJK: 数据; emoji: 🙂",
          " <CON> context </CON>\n\n<QUE> a question? <ANS> an answer </END>"]


@pytest.fixture(scope="module", params=["byte", "gguf", "sentencepiece"])
def ours(request, tmp_path_factory):
  if request.param == "byte":
    return tokenizer_lib.ByteTokenizer()
  if request.param == "gguf":
    return tokenizer_lib.gguf_tokenizer(readers.resolve_gguf("smollm2"))
  from instruct_pt.data import sources  # pylint: disable=import-outside-toplevel
  prefix = tmp_path_factory.mktemp("spm") / "spm"
  return tokenizer_lib.train_sentencepiece(sources.demo_corpus()[:400], 600, prefix)


def test_python_and_tensorflow_paths_match_our_encoding(ours):
  """seqio's encode / encode_tf / decode / decode_tf agree with the wrapped vocabulary."""
  wrapped = SeqIOVocabulary(ours)
  assert wrapped.vocab_size == ours.vocab_size and wrapped.eos_id == ours.eos_id
  for text in SAMPLE:
    ids = ours.encode(text)
    assert wrapped.encode(text) == ids
    assert wrapped.encode_tf(tf.constant(text)).numpy().tolist() == ids
    assert wrapped.decode(ids) == ours.decode(ids)
    assert wrapped.decode_tf(tf.constant(ids, tf.int32)).numpy().decode() == ours.decode(ids)
  batch = tf.ragged.constant([ours.encode(t) for t in SAMPLE[:2]]).to_tensor()
  decoded = wrapped.decode_tf(batch).numpy()  # the shorter row padded with 0s
  assert [row.decode() for row in decoded] == [ours.decode(ours.encode(t)) for t in SAMPLE[:2]]


def test_a_seqio_task_tokenizes_with_it(ours):
  """A SeqIO Task with our vocabulary yields our ids plus EOS through tf.data."""
  wrapped = SeqIOVocabulary(ours)
  name = f"test_instruct_pt_vocab_{type(ours).__name__}_{id(ours)}"
  source = seqio.FunctionDataSource(
      lambda split, shuffle_files: tf.data.Dataset.from_tensor_slices({"targets": SAMPLE}),
      splits=["train"])
  seqio.TaskRegistry.add(
      name, source=source, preprocessors=[seqio.preprocessors.tokenize,
                                          seqio.preprocessors.append_eos],
      output_features={"targets": seqio.Feature(wrapped, add_eos=True)})
  try:
    examples = list(seqio.get_mixture_or_task(name).get_dataset(
        sequence_length=None, split="train", shuffle=False).as_numpy_iterator())
  finally:
    seqio.TaskRegistry.remove(name)
  assert [e["targets"].tolist() for e in examples] == [
      ours.encode(t) + [ours.eos_id] for t in SAMPLE]
