using System;
using System.Collections.Generic;

namespace Moonforge.Tests
{
    /// <summary>
    /// <see cref="Kcp"/> without sockets: two ends over a simulated link that loses, duplicates and
    /// reorders datagrams deliver byte streams intact and in order both ways; junk datagrams are
    /// refused; segments have kcp-go's layout.
    /// </summary>
    internal static class KcpTests
    {
        internal static int Run()
        {
            var check = new Check();
            foreach (double loss in new[] { 0, 0.05, 0.2 }) Streams(check, loss);
            Junk(check);
            Layout(check);
            return check.Finish("kcp");
        }

        private sealed class Datagram
        {
            internal uint At;
            internal bool ToA;
            internal byte[] Data;
        }

        private static byte[] Pattern(int n, int salt)
        {
            var b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = (byte)(i * 7 + salt);
            return b;
        }

        private static void Streams(Check check, double loss)
        {
            var rnd = new Random(15);
            var wire = new List<Datagram>();
            uint now = 0;
            Kcp a = null, b = null;
            Func<bool, Action<byte[], int>> sender = toA => (buf, n) =>
            {
                if (rnd.NextDouble() < loss) return;
                var d = new byte[n];
                Buffer.BlockCopy(buf, 0, d, 0, n);
                uint at = now + 1 + (rnd.NextDouble() < 0.05 ? 25u : 0u);
                wire.Add(new Datagram { At = at, ToA = toA, Data = d });
                if (rnd.NextDouble() < 0.02) wire.Add(new Datagram { At = at + 2, ToA = toA, Data = d });
            };
            a = new Kcp(0x12345678, sender(false));
            b = new Kcp(0x12345678, sender(true));
            var atA = new List<byte>();
            var atB = new List<byte>();
            a.Received = d => atA.AddRange(d);
            b.Received = d => atB.AddRange(d);
            byte[] aData = Pattern(200000, 1), bData = Pattern(50000, 3);
            int sentA = 0, sentB = 0;
            bool refused = false;
            for (int step = 0; step < 20000; step++)
            {
                now += 5;
                if (sentA < aData.Length && a.Waiting < 300)
                {
                    int n = Math.Min(3001, aData.Length - sentA);
                    a.Send(aData, sentA, n);
                    sentA += n;
                }
                if (sentB < bData.Length && b.Waiting < 300)
                {
                    int n = Math.Min(701, bData.Length - sentB);
                    b.Send(bData, sentB, n);
                    sentB += n;
                }
                var due = wire.FindAll(d => d.At <= now);
                wire.RemoveAll(d => d.At <= now);
                foreach (var d in due)
                {
                    Kcp to = d.ToA ? a : b;
                    to.SetClock(now);
                    refused |= !to.Input(d.Data, 0, d.Data.Length);
                }
                a.Update(now);
                b.Update(now);
                if (sentA == aData.Length && sentB == bData.Length && a.Waiting == 0 && b.Waiting == 0) break;
            }
            string label = " at " + loss * 100 + "% loss";
            check.True(!refused, "no well-formed datagram refused" + label);
            check.True(!a.Dead && !b.Dead, "the link stays alive" + label);
            check.True(Same(atB, aData), "the stream from a to b arrives intact" + label + " (" + atB.Count + " of " + aData.Length + " bytes)");
            check.True(Same(atA, bData), "the stream from b to a arrives intact" + label + " (" + atA.Count + " of " + bData.Length + " bytes)");
        }

        private static bool Same(List<byte> got, byte[] want)
        {
            if (got.Count != want.Length) return false;
            for (int i = 0; i < want.Length; i++) if (got[i] != want[i]) return false;
            return true;
        }

        private static void Junk(Check check)
        {
            int sent = 0;
            var k = new Kcp(7, (buf, n) => sent++);
            var rnd = new Random(3);
            for (int i = 0; i < 2000; i++)
            {
                var d = new byte[rnd.Next(80)];
                rnd.NextBytes(d);
                k.Input(d, 0, d.Length);
            }
            var truncated = new byte[25];
            truncated[0] = 7;
            truncated[4] = 81;
            truncated[20] = 200;
            check.True(!k.Input(truncated, 0, truncated.Length), "a segment whose length runs past the datagram is refused");
            var hello = new byte[] { 1, 2, 3 };
            k.Send(hello, 0, hello.Length);
            k.Update(1000);
            check.True(sent >= 1, "the conversation sends after the junk");
        }

        private static void Layout(Check check)
        {
            byte[] got = null;
            var k = new Kcp(0x01020304, (buf, n) =>
            {
                got = new byte[n];
                Buffer.BlockCopy(buf, 0, got, 0, n);
            });
            var hello = System.Text.Encoding.ASCII.GetBytes("hello");
            k.Send(hello, 0, hello.Length);
            k.Update(5);
            check.True(got != null && got.Length == Kcp.Overhead + 5, "one datagram of 29 bytes");
            if (got == null) return;
            check.Equal("04030201", BitConverter.ToString(got, 0, 4).Replace("-", ""), "conv, little-endian");
            check.Equal(81, (int)got[4], "cmd PUSH");
            check.Equal("0001", BitConverter.ToString(got, 6, 2).Replace("-", ""), "wnd 256");
            check.Equal("00000000", BitConverter.ToString(got, 12, 4).Replace("-", ""), "sn 0");
            check.Equal("05000000", BitConverter.ToString(got, 20, 4).Replace("-", ""), "len 5");
            check.Equal("hello", System.Text.Encoding.ASCII.GetString(got, 24, 5), "data");
        }
    }
}
