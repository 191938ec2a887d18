using System.Text;

namespace Moonforge
{
    /// <summary>Strict UTF-8, with the same notion of validity as Go's utf8.Valid (and so protobuf-go).</summary>
    internal static class Utf8
    {
        /// <summary>Encodes strings; throws on a lone surrogate, which no valid UTF-8 can carry.</summary>
        internal static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>Reports whether buf[offset, offset+count) is well-formed UTF-8: no overlong forms,
        /// no surrogates, nothing above U+10FFFF, no truncated sequence.</summary>
        internal static bool Valid(byte[] buf, int offset, int count)
        {
            int i = offset, end = offset + count;
            while (i < end)
            {
                byte b = buf[i];
                if (b < 0x80)
                {
                    i++;
                    continue;
                }
                int n;
                byte lo = 0x80, hi = 0xBF;
                if (b >= 0xC2 && b <= 0xDF) n = 1;
                else if (b == 0xE0) { n = 2; lo = 0xA0; }
                else if (b >= 0xE1 && b <= 0xEC) n = 2;
                else if (b == 0xED) { n = 2; hi = 0x9F; }
                else if (b >= 0xEE && b <= 0xEF) n = 2;
                else if (b == 0xF0) { n = 3; lo = 0x90; }
                else if (b >= 0xF1 && b <= 0xF3) n = 3;
                else if (b == 0xF4) { n = 3; hi = 0x8F; }
                else return false;
                if (end - i <= n) return false;
                byte c = buf[i + 1];
                if (c < lo || c > hi) return false;
                for (int k = 2; k <= n; k++)
                {
                    c = buf[i + k];
                    if (c < 0x80 || c > 0xBF) return false;
                }
                i += n + 1;
            }
            return true;
        }
    }
}
