"""C4 quality: line rules, document rules and the rewritten text."""

from tamis.batch import DocBatch
from tamis.filters.c4 import C4QualityFilter, Reasons

SENTENCE = "This is a sentence."


def run(text, **params):
    batch = DocBatch({"text": [text]})
    reason = C4QualityFilter(**params).filter_batch(batch)[0]
    return reason, batch["text"][0]


def doc(n_sentences):
    return "\n".join([SENTENCE] * n_sentences)


def test_minimum_sentences():
    assert run(doc(5))[0] is None
    assert run(doc(4))[0] == Reasons.TOO_FEW_SENTENCES
    assert run(" ".join([SENTENCE] * 5))[0] is None  # sentences, not lines, are counted
    assert run(" ".join([SENTENCE] * 4))[0] == Reasons.TOO_FEW_SENTENCES


def test_line_word_count():
    assert run(doc(5) + "\nthree little words")[1].endswith("three little words")
    assert run(doc(5) + "\ntwo words")[1] == doc(5)


def test_long_words():
    assert run(doc(5) + "\nkeep this " + "a" * 1000)[1].endswith("a" * 1000)
    assert run(doc(5) + "\ndrop this " + "a" * 1001)[1] == doc(5)


def test_document_rules():
    assert run(doc(5) + "\nLorem Ipsum dolor sit amet")[0] == Reasons.LOREM_IPSUM
    assert run(doc(5) + "\nsome code { here")[0] == Reasons.CURLY_BRACKET
    assert run(doc(5) + "\njavascript { is off")[0] is None  # the javascript line goes before the bracket rule


def test_line_rules_and_citations():
    reason, text = run(doc(5) + "\nPlease enable JavaScript now.\nThis site uses cookies a lot.\nA fact[1] here[edit].")
    assert reason is None
    assert text == doc(5) + "\nA fact here."


def test_terminal_punctuation_option():
    text = doc(5) + "\nno final mark here\nends with dots..."
    assert run(text)[1] == text
    assert run(text, filter_no_terminal_punct=True)[1] == doc(5)


def test_dropped_documents_keep_their_text():
    assert run(doc(4)) == (Reasons.TOO_FEW_SENTENCES, doc(4))
