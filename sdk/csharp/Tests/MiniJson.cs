using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Moonforge.Tests
{
    /// <summary>A small JSON reader for the test vectors: objects become Dictionary&lt;string, object&gt;,
    /// arrays List&lt;object&gt;, numbers double, strings string, true/false bool, null null.</summary>
    internal sealed class MiniJson
    {
        private readonly string s;
        private int i;

        private MiniJson(string s)
        {
            this.s = s;
        }

        internal static object Parse(string text)
        {
            var p = new MiniJson(text);
            object v = p.Value();
            p.Space();
            if (p.i != p.s.Length) throw p.Error("trailing characters");
            return v;
        }

        private object Value()
        {
            Space();
            if (i >= s.Length) throw Error("unexpected end");
            char c = s[i];
            switch (c)
            {
                case '{': return Object();
                case '[': return Array();
                case '"': return String();
                case 't': Word("true"); return true;
                case 'f': Word("false"); return false;
                case 'n': Word("null"); return null;
            }
            return Number();
        }

        private Dictionary<string, object> Object()
        {
            var d = new Dictionary<string, object>();
            i++;
            Space();
            if (Peek() == '}')
            {
                i++;
                return d;
            }
            while (true)
            {
                Space();
                string key = String();
                Space();
                Expect(':');
                d[key] = Value();
                Space();
                if (Peek() == ',')
                {
                    i++;
                    continue;
                }
                Expect('}');
                return d;
            }
        }

        private List<object> Array()
        {
            var l = new List<object>();
            i++;
            Space();
            if (Peek() == ']')
            {
                i++;
                return l;
            }
            while (true)
            {
                l.Add(Value());
                Space();
                if (Peek() == ',')
                {
                    i++;
                    continue;
                }
                Expect(']');
                return l;
            }
        }

        private string String()
        {
            Expect('"');
            var sb = new StringBuilder();
            while (true)
            {
                if (i >= s.Length) throw Error("unterminated string");
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                char e = s[i++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: throw Error("bad escape");
                }
            }
        }

        private double Number()
        {
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            if (start == i) throw Error("unexpected character");
            return double.Parse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        private void Word(string w)
        {
            if (string.CompareOrdinal(s, i, w, 0, w.Length) != 0) throw Error("expected " + w);
            i += w.Length;
        }

        private void Expect(char c)
        {
            if (Peek() != c) throw Error("expected " + c);
            i++;
        }

        private char Peek()
        {
            return i < s.Length ? s[i] : '\0';
        }

        private void Space()
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        }

        private FormatException Error(string what)
        {
            return new FormatException("JSON: " + what + " at " + i);
        }
    }
}
