#include "dialogs/normalize.hpp"

#include <doctest/doctest.h>

using namespace aoun::dialogs;

TEST_CASE("normalize: digits in every script become ASCII") {
  CHECK(normalize("٠١٢٣٤٥٦٧٨٩") == "0123456789");
  CHECK(normalize("۰۱۲۳۴۵۶۷۸۹") == "0123456789");
  CHECK(to_ascii_digits("رقمي ٠٥٠١٢٣٤٥٦٧") == "رقمي 0501234567");
}

TEST_CASE("normalize: diacritics, tatweel and letter variants") {
  CHECK(normalize("السَّلامُ عَلَيْكُم") == normalize("السلام عليكم"));
  CHECK(normalize("مـــرحبا") == "مرحبا");
  CHECK(normalize("أإآٱ") == "ا");  // unified, then the run of alefs collapses
  CHECK(normalize("أا") == "اا");   // two in a row are kept
  CHECK(normalize("مستشفى") == "مستشفي");
  CHECK(normalize("مساعدة") == "مساعده");
  CHECK(normalize("مؤسسة") == "موسسه");
  CHECK(normalize("مسائل") == "مسايل");
}

TEST_CASE("normalize: repeated letters, case, punctuation, spaces") {
  CHECK(normalize("مرحبااااا") == "مرحبا");
  CHECK(normalize("شكرررا!!!") == "شكرا");
  CHECK(normalize("HELLOOOO") == "hello");
  CHECK(normalize("good") == "good");  // Latin doubles are real spelling
  CHECK(normalize("  وش   الخدمات؟؟  ") == "وش الخدمات");
  CHECK(normalize("abi musa3da...") == "abi musa3da");
  CHECK(normalize("🙂 hi") == "hi");
  CHECK(normalize("") == "");
  CHECK(normalize("؟؟؟") == "");
}

TEST_CASE("tokenize splits normalized words") {
  auto t = tokenize("أبي، أقدّم طلب!");
  REQUIRE(t.size() == 3);
  CHECK(t[0] == "ابي");
  CHECK(t[1] == "اقدم");
}

TEST_CASE("utf8 helpers") {
  CHECK(utf8_length("سلام") == 4);
  CHECK(utf8_encode(utf8_decode("سلام hi")) == "سلام hi");
  CHECK(utf8_decode(std::string("\xff", 1)) == std::u32string(1, U'\uFFFD'));
  CHECK(utf8_decode(std::string("\xd8", 1)) == std::u32string(1, U'\uFFFD'));  // truncated
  CHECK(has_arabic_letter("hi سلام"));
  CHECK_FALSE(has_arabic_letter("hello 123"));
  CHECK(has_latin_letter("abi"));
}

TEST_CASE("edit distance counts code points, not bytes") {
  CHECK(edit_distance("مساعده", "مسعاده") == 1);  // adjacent transposition
  CHECK(edit_distance("موظف", "موضف") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("سلام", "سلام") == 0);
}
