using System;
using System.Collections.Generic;

namespace Moonforge
{
    /// <summary>
    /// KCP, the ARQ protocol that the KCP transport runs over UDP: the client side of one conversation,
    /// interoperating with xtaci/kcp-go v5, in plain C# (no unsafe code, no reflection: IL2CPP-safe).
    /// No sockets here: <see cref="Input"/> takes datagrams, the output delegate sends them, and
    /// <see cref="Update"/> runs the timers. Not thread-safe: the owner serialises every call.
    /// </summary>
    /// <remarks>
    /// Segment (little-endian): conv u32, cmd u8, frg u8, wnd u16, ts u32, sn u32, una u32, len u32, then
    /// len bytes. The settings are the protocol's (docs/protocol.md, "KCP"): stream mode off, MTU 1400,
    /// windows of 256, no-delay mode (interval 10 ms, fast resend 2, no congestion window). Received
    /// data is handed out as one byte stream in order: message boundaries do not matter to frames.
    /// </remarks>
    public sealed class Kcp
    {
        private const byte CmdPush = 81, CmdAck = 82, CmdWask = 83, CmdWins = 84;
        /// <summary>The size of a segment header.</summary>
        public const int Overhead = 24;
        private const int RtoMin = 30, RtoDefault = 200, RtoMax = 60000;
        private const int ProbeInit = 7000, ProbeLimit = 120000;
        /// <summary>Transmissions of one segment without an acknowledgement after which the link is dead.</summary>
        public const int DeadLink = 20;
        private const int FastLimit = 5;

        private sealed class Segment
        {
            internal uint Sn;
            internal byte[] Data;
            internal int Xmit;
            internal int Rto;
            internal uint ResendTs;
            internal int FastAck;
        }

        private readonly uint conv;
        private readonly Action<byte[], int> output;
        private readonly int mtu;
        private readonly int mss;
        private readonly int sndWnd;
        private readonly int rcvWnd;
        private readonly int interval;
        private readonly int fastResend;
        private int rmtWnd;
        private uint sndUna, sndNxt, rcvNxt;
        private int rxSrtt, rxRttVal, rxRto = RtoDefault;
        private uint current, tsFlush;
        private bool probe;
        private int probeWait;
        private uint tsProbe;
        private readonly Queue<byte[]> sndQueue = new Queue<byte[]>();
        private readonly List<Segment> sndBuf = new List<Segment>();
        private readonly Dictionary<uint, byte[]> rcvBuf = new Dictionary<uint, byte[]>();
        private readonly List<uint> ackList = new List<uint>();
        private readonly byte[] buffer;
        private int bufferSize;

        /// <summary>A conversation with id conv (non-zero) whose datagrams go to output(buffer, length);
        /// output must copy what it keeps.</summary>
        public Kcp(uint conv, Action<byte[], int> output, int mtu = 1400, int sndWnd = 256, int rcvWnd = 256, int interval = 10, int fastResend = 2)
        {
            if (conv == 0) throw new ArgumentException("the conversation id must not be 0", "conv");
            this.conv = conv;
            this.output = output;
            this.mtu = mtu;
            mss = mtu - Overhead;
            this.sndWnd = sndWnd;
            this.rcvWnd = rcvWnd;
            rmtWnd = rcvWnd;
            this.interval = interval;
            this.fastResend = fastResend;
            buffer = new byte[mtu];
        }

        /// <summary>The conversation id.</summary>
        public uint Conv { get { return conv; } }

        /// <summary>The most data bytes one segment carries.</summary>
        public int Mss { get { return mss; } }

        /// <summary>The update interval in milliseconds.</summary>
        public int Interval { get { return interval; } }

        /// <summary>True once a segment went unacknowledged for <see cref="DeadLink"/> transmissions.</summary>
        public bool Dead { get; private set; }

        /// <summary>Segments queued or in flight.</summary>
        public int Waiting { get { return sndQueue.Count + sndBuf.Count; } }

        /// <summary>Queues bytes for the peer, split into segments.</summary>
        public void Send(byte[] data, int offset, int count)
        {
            for (int i = 0; i < count; i += mss)
            {
                int n = Math.Min(mss, count - i);
                var seg = new byte[n];
                Buffer.BlockCopy(data, offset + i, seg, 0, n);
                sndQueue.Enqueue(seg);
            }
        }

        /// <summary>Called with each segment's data as it becomes contiguous, in order.</summary>
        public Action<byte[]> Received { get; set; }

        private static int Diff(uint a, uint b)
        {
            return unchecked((int)(a - b));
        }

        private static uint ReadU32(byte[] b, int i)
        {
            return (uint)(b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24);
        }

        private static void WriteU32(byte[] b, int i, uint v)
        {
            b[i] = (byte)v;
            b[i + 1] = (byte)(v >> 8);
            b[i + 2] = (byte)(v >> 16);
            b[i + 3] = (byte)(v >> 24);
        }

        private void UpdateAck(int rtt)
        {
            if (rxSrtt == 0)
            {
                rxSrtt = rtt;
                rxRttVal = rtt / 2;
            }
            else
            {
                int delta = Math.Abs(rtt - rxSrtt);
                rxRttVal = (3 * rxRttVal + delta) / 4;
                rxSrtt = Math.Max(1, (7 * rxSrtt + rtt) / 8);
            }
            int rto = rxSrtt + Math.Max(interval, 4 * rxRttVal);
            rxRto = Math.Min(Math.Max(rto, RtoMin), RtoMax);
        }

        private void ShrinkBuf()
        {
            sndUna = sndBuf.Count > 0 ? sndBuf[0].Sn : sndNxt;
        }

        private void ParseUna(uint una)
        {
            int n = 0;
            while (n < sndBuf.Count && Diff(una, sndBuf[n].Sn) > 0) n++;
            if (n > 0) sndBuf.RemoveRange(0, n);
        }

        private void ParseAck(uint sn)
        {
            if (Diff(sn, sndUna) < 0 || Diff(sn, sndNxt) >= 0) return;
            for (int i = 0; i < sndBuf.Count; i++)
            {
                if (sndBuf[i].Sn == sn)
                {
                    sndBuf.RemoveAt(i);
                    return;
                }
                if (Diff(sn, sndBuf[i].Sn) < 0) return;
            }
        }

        private void ParseFastAck(uint sn)
        {
            if (Diff(sn, sndUna) < 0 || Diff(sn, sndNxt) >= 0) return;
            foreach (var seg in sndBuf)
            {
                if (Diff(sn, seg.Sn) < 0) return;
                if (sn != seg.Sn) seg.FastAck++;
            }
        }

        private void ParseData(uint sn, byte[] data)
        {
            if (Diff(sn, rcvNxt + (uint)rcvWnd) >= 0 || Diff(sn, rcvNxt) < 0) return;
            if (!rcvBuf.ContainsKey(sn)) rcvBuf[sn] = data;
            byte[] d;
            while (rcvBuf.TryGetValue(rcvNxt, out d))
            {
                rcvBuf.Remove(rcvNxt);
                rcvNxt++;
                if (Received != null) Received(d);
            }
        }

        /// <summary>Takes one datagram from the peer; false for one that is not whole segments of this
        /// conversation (dropped).</summary>
        public bool Input(byte[] data, int offset, int count)
        {
            if (count < Overhead) return false;
            int i = offset, end = offset + count;
            uint maxAck = 0;
            bool gotAck = false;
            while (end - i >= Overhead)
            {
                if (ReadU32(data, i) != conv) return false;
                byte cmd = data[i + 4];
                int wnd = data[i + 6] | data[i + 7] << 8;
                uint ts = ReadU32(data, i + 8);
                uint sn = ReadU32(data, i + 12);
                uint una = ReadU32(data, i + 16);
                uint len = ReadU32(data, i + 20);
                i += Overhead;
                if (len > (uint)(end - i) || cmd < CmdPush || cmd > CmdWins) return false;
                rmtWnd = wnd;
                ParseUna(una);
                ShrinkBuf();
                if (cmd == CmdAck)
                {
                    if (Diff(current, ts) >= 0) UpdateAck(Diff(current, ts));
                    ParseAck(sn);
                    ShrinkBuf();
                    if (!gotAck || Diff(sn, maxAck) > 0)
                    {
                        maxAck = sn;
                        gotAck = true;
                    }
                }
                else if (cmd == CmdPush)
                {
                    if (Diff(sn, rcvNxt + (uint)rcvWnd) < 0)
                    {
                        ackList.Add(sn);
                        ackList.Add(ts);
                        var d = new byte[len];
                        Buffer.BlockCopy(data, i, d, 0, (int)len);
                        ParseData(sn, d);
                    }
                }
                else if (cmd == CmdWask)
                {
                    probe = true;
                }
                i += (int)len;
            }
            if (gotAck) ParseFastAck(maxAck);
            return true;
        }

        private int WndUnused()
        {
            return Math.Max(0, rcvWnd - rcvBuf.Count);
        }

        private void Put(byte cmd, int wnd, uint ts, uint sn, byte[] data)
        {
            int len = data != null ? data.Length : 0;
            if (bufferSize + Overhead + len > mtu)
            {
                output(buffer, bufferSize);
                bufferSize = 0;
            }
            int p = bufferSize;
            WriteU32(buffer, p, conv);
            buffer[p + 4] = cmd;
            buffer[p + 5] = 0;
            buffer[p + 6] = (byte)wnd;
            buffer[p + 7] = (byte)(wnd >> 8);
            WriteU32(buffer, p + 8, ts);
            WriteU32(buffer, p + 12, sn);
            WriteU32(buffer, p + 16, rcvNxt);
            WriteU32(buffer, p + 20, (uint)len);
            if (len > 0) Buffer.BlockCopy(data, 0, buffer, p + Overhead, len);
            bufferSize = p + Overhead + len;
        }

        /// <summary>Sends acknowledgements, window probes, new data within the windows, and what is due again.</summary>
        public void Flush()
        {
            int wnd = WndUnused();
            for (int k = 0; k < ackList.Count; k += 2) Put(CmdAck, wnd, ackList[k + 1], ackList[k], null);
            ackList.Clear();

            if (rmtWnd == 0)
            {
                if (probeWait == 0)
                {
                    probeWait = ProbeInit;
                    tsProbe = current + (uint)probeWait;
                }
                else if (Diff(current, tsProbe) >= 0)
                {
                    probeWait = Math.Min(ProbeLimit, probeWait + probeWait / 2);
                    tsProbe = current + (uint)probeWait;
                    Put(CmdWask, wnd, 0, 0, null);
                }
            }
            else
            {
                probeWait = 0;
                tsProbe = 0;
            }
            if (probe)
            {
                Put(CmdWins, wnd, 0, 0, null);
                probe = false;
            }

            int cwnd = Math.Min(sndWnd, rmtWnd);
            while (sndQueue.Count > 0 && Diff(sndNxt, sndUna + (uint)cwnd) < 0)
            {
                sndBuf.Add(new Segment { Sn = sndNxt, Data = sndQueue.Dequeue(), Rto = rxRto });
                sndNxt++;
            }

            foreach (var seg in sndBuf)
            {
                bool send = false;
                if (seg.Xmit == 0)
                {
                    send = true;
                    seg.Rto = rxRto;
                    seg.ResendTs = current + (uint)seg.Rto;
                }
                else if (Diff(current, seg.ResendTs) >= 0)
                {
                    send = true;
                    seg.Rto += seg.Rto / 2;
                    seg.ResendTs = current + (uint)seg.Rto;
                }
                else if (seg.FastAck >= fastResend && seg.Xmit <= FastLimit)
                {
                    send = true;
                    seg.FastAck = 0;
                    seg.ResendTs = current + (uint)seg.Rto;
                }
                if (send)
                {
                    seg.Xmit++;
                    if (seg.Xmit >= DeadLink) Dead = true;
                    Put(CmdPush, wnd, current, seg.Sn, seg.Data);
                }
            }
            if (bufferSize > 0)
            {
                output(buffer, bufferSize);
                bufferSize = 0;
            }
        }

        /// <summary>Sets the clock (milliseconds, any origin) for what follows.</summary>
        public void SetClock(uint nowMs)
        {
            current = nowMs;
        }

        /// <summary>Sets the clock and flushes when an interval has passed or acknowledgements wait.</summary>
        public void Update(uint nowMs)
        {
            current = nowMs;
            if (ackList.Count > 0 || Diff(current, tsFlush) >= 0)
            {
                tsFlush = current + (uint)interval;
                Flush();
            }
        }
    }
}
