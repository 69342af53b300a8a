// bot/media: the headers that hand a beneficiary's file to a staff browser as a download, the
// download slots, and the write deadline a large file gets.
#include <memory>

#include <doctest/doctest.h>

#include "bot/http_server.hpp"
#include "bot/media.hpp"

namespace mh = aoun::bot::media_http;

TEST_CASE("media content type: the provider's, then the stored one; active types are neutralised") {
  CHECK(mh::content_type("image/jpeg", "", "") == "image/jpeg");
  CHECK(mh::content_type("Application/PDF; charset=binary", "", "") == "application/pdf");
  // Telegram serves files as application/octet-stream: the type stored from the webhook wins.
  CHECK(mh::content_type("application/octet-stream", "", "application/pdf") == "application/pdf");
  CHECK(mh::content_type("", "audio/ogg", "image/jpeg") == "audio/ogg");
  CHECK(mh::content_type("", "", "") == "application/octet-stream");
  CHECK(mh::content_type("text/html", "", "") == "application/octet-stream");
  CHECK(mh::content_type("image/svg+xml", "", "") == "application/octet-stream");
  CHECK(mh::content_type("", "", "application/rss+xml") == "application/octet-stream");
  CHECK(mh::content_type("image/jpeg\r\nSet-Cookie: x", "", "") == "application/octet-stream");
  CHECK(mh::content_type("image", "", "") == "application/octet-stream");
  CHECK(mh::content_type("a/b/c", "", "") == "application/octet-stream");
}

TEST_CASE("media file name: sanitised, bounded, with a fallback") {
  CHECK(mh::file_name("filename.pdf", "", "document", "application/pdf", 7) == "filename.pdf");
  CHECK(mh::file_name("../../etc/passwd", "", "document", "", 7) == "_.._etc_passwd");
  CHECK(mh::file_name("a\r\nb\".pdf", "", "document", "", 7) == "a__b_.pdf");
  // Direction controls would make "invoice<RLO>fdp.exe" read as a PDF on a download shelf.
  CHECK(mh::file_name("invoice\u202Efdp.exe", "", "document", "", 7) == "invoice_fdp.exe");
  CHECK(mh::file_name("\u2066a\u2069\u200Fb\u061C.pdf", "", "document", "", 7) == "_a__b_.pdf");
  CHECK(mh::file_name("تقرير الشرطة.pdf", "", "document", "", 7) == "تقرير الشرطة.pdf");  // Arabic stays
  CHECK(mh::file_name("", "documents/file_3.pdf", "document", "application/pdf", 7) == "file_3.pdf");
  CHECK(mh::file_name("", "", "image", "image/jpeg", 42) == "image-42.jpg");
  CHECK(mh::file_name("...", "", "audio", "audio/ogg; codecs=opus", 5) == "audio-5.ogg");
  CHECK(mh::file_name("", "", "", "x/unknown", 5) == "file-5");
  std::string longname;
  for (int i = 0; i < 100; ++i) longname += "ع";  // 2 bytes each
  // Regression: the cut took the extension with it, so a long Arabic name lost ".pdf".
  auto cut = mh::file_name(longname + ".pdf", "", "document", "", 1);
  CHECK(cut.size() == 120);
  CHECK(cut == longname.substr(0, 116) + ".pdf");  // the stem cut on a character boundary
  auto odd = mh::file_name("x" + longname + ".pdf", "", "document", "", 1);  // boundary falls mid-character
  CHECK(odd == "x" + longname.substr(0, 114) + ".pdf");
  // Without an extension (or with a "dot" that is no extension), the whole name is cut.
  CHECK(mh::file_name(longname, "", "document", "", 1) == longname.substr(0, 120));
  CHECK(mh::file_name(longname + ".ملف", "", "document", "", 1) == longname.substr(0, 120));
}

TEST_CASE("media download slot: given back on destruction, even after the downloader is gone") {
  // Regression: the slot called back into the downloader, which app destroys before ~io_context
  // destroys suspended coroutine frames (a SIGTERM during a slow download): a write to freed
  // memory. The slot now holds the counter itself (run under ASan to see the difference).
  aoun::bot::config cfg;
  cfg.media.max_concurrent = 1;
  boost::asio::io_context ioc;
  auto m = std::make_unique<aoun::bot::media_downloader>(ioc.get_executor(), cfg);
  auto a = m->try_acquire();
  REQUIRE(a);
  CHECK_FALSE(m->try_acquire());  // the cap is 1
  a.reset();
  auto b = m->try_acquire();
  REQUIRE(b);
  m.reset();
  b.reset();  // after the downloader: must not touch it
}

TEST_CASE("media Content-Disposition: attachment with an ASCII fallback and RFC 5987 UTF-8 name") {
  CHECK(mh::content_disposition("filename.pdf") ==
        "attachment; filename=\"filename.pdf\"; filename*=UTF-8''filename.pdf");
  CHECK(mh::content_disposition("هوية.jpg") ==
        "attachment; filename=\"________.jpg\"; filename*=UTF-8''%D9%87%D9%88%D9%8A%D8%A9.jpg");
  CHECK(mh::content_disposition("a b'(1).pdf") ==
        "attachment; filename=\"a b'(1).pdf\"; filename*=UTF-8''a%20b%27%281%29.pdf");
}

TEST_CASE("write_timeout: the base plus the body's time at 64 KiB/s") {
  using std::chrono::milliseconds;
  using aoun::bot::write_timeout;
  CHECK(write_timeout(milliseconds(30000), 0) == milliseconds(30000));
  CHECK(write_timeout(milliseconds(30000), 64 * 1024) == milliseconds(31000));
  CHECK(write_timeout(milliseconds(30000), 32 * 1024) == milliseconds(30500));
  // Regression: a 16 MiB download got the same fixed 30 s as a JSON answer, cut off on a slow link.
  CHECK(write_timeout(milliseconds(30000), 16 * 1024 * 1024) == milliseconds(30000 + 256000));
}

TEST_CASE("web chat uploads: the first bytes say what a file is, and its kept name ends as that type") {
  using namespace std::string_literals;
  auto kind = [](const std::string& b) {
    auto t = mh::sniff_upload(b);
    return t ? std::string(t->mime) : std::string("refused");
  };
  CHECK(kind("\xFF\xD8\xFF\xE0rest"s) == "image/jpeg");
  CHECK(kind("\x89PNG\r\n\x1A\n\0\0\0\rIHDR"s) == "image/png");
  CHECK(kind("RIFF\x10\0\0\0WEBPVP8 "s) == "image/webp");
  CHECK(kind("%PDF-1.7\n") == "application/pdf");
  CHECK(mh::sniff_upload("%PDF-1.7\n")->kind == "document");
  CHECK(mh::sniff_upload("\xFF\xD8\xFF"s)->kind == "image");
  // Cut short, other types, and what a browser would run, are refused.
  CHECK(kind("\x89PNG\r\n"s) == "refused");
  CHECK(kind("RIFF\x10\0\0\0WAVE"s) == "refused");
  CHECK(kind("GIF89a") == "refused");
  CHECK(kind("<svg xmlns='http://www.w3.org/2000/svg'/>") == "refused");
  CHECK(kind(" %PDF-1.7") == "refused");
  CHECK(kind("") == "refused");

  const auto png = *mh::sniff_upload("\x89PNG\r\n\x1A\n"s);
  const auto jpeg = *mh::sniff_upload("\xFF\xD8\xFF"s);
  CHECK(mh::upload_name("هوية.png", png) == "هوية.png");
  CHECK(mh::upload_name("SCAN.PNG", png) == "SCAN.PNG");
  CHECK(mh::upload_name("photo.jpeg", jpeg) == "photo.jpeg");
  CHECK(mh::upload_name("invoice.html", png) == "invoice.html.png");
  CHECK(mh::upload_name(".png", png) == ".png.png");  // the extension alone is no name
  CHECK(mh::upload_name("", png).empty());            // named at download (file_name)
  CHECK(mh::upload_name("a\xFF.png"s, png) == "a\xEF\xBF\xBD.png");  // valid UTF-8 only
  const auto long_name = mh::upload_name(std::string(300, 'x') + ".png", png);
  CHECK(long_name.size() == 200 + 4);  // 200 code points, then the type's extension again
  CHECK(long_name.ends_with(".png"));
}
